package sequencer

import (
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors/msg"
)

// alarm answers msg.Alarm as etcd's alarm store does. This member's
// NOSPACE alarm is the quota alarm (durable) or the free-space one (in
// memory), shown once if both are raised; an operator's ACTIVATE makes it
// durable, and DEACTIVATE clears both (the free-space check raises it
// again while space stays short, the quota check once a write finds the
// data still over the quota). NOSPACE alarms raised for other member IDs,
// which etcd accepts too, are kept in memory only; any NOSPACE alarm
// refuses puts, as in etcd.
func (s *sequencer) alarm(m *msg.Alarm) {
	r := m.Req
	var res msg.AlarmResult
	switch r.Action {
	case pb.AlarmRequest_GET:
		if r.Alarm == pb.AlarmType_NONE || r.Alarm == pb.AlarmType_NOSPACE {
			res.Alarms = s.noSpaceAlarms()
		}
	case pb.AlarmRequest_ACTIVATE:
		switch {
		case r.Alarm == pb.AlarmType_NONE: // etcd ignores it
		case r.Alarm != pb.AlarmType_NOSPACE:
			res.Err = msg.ErrAlarmUnsupported
		case r.MemberID != s.cfg.MemberID:
			if s.foreignNoSpace == nil {
				s.foreignNoSpace = map[uint64]bool{}
			}
			s.foreignNoSpace[r.MemberID] = true
			res.Alarms = []*pb.AlarmMember{{MemberID: r.MemberID, Alarm: pb.AlarmType_NOSPACE}}
		default:
			res.Err = s.setQuotaAlarm(true)
			if res.Err == nil {
				res.Alarms = []*pb.AlarmMember{{MemberID: r.MemberID, Alarm: pb.AlarmType_NOSPACE}}
			}
		}
	case pb.AlarmRequest_DEACTIVATE:
		switch {
		case r.Alarm != pb.AlarmType_NOSPACE: // none other is ever raised
		case r.MemberID != s.cfg.MemberID:
			if s.foreignNoSpace[r.MemberID] {
				delete(s.foreignNoSpace, r.MemberID)
				res.Alarms = []*pb.AlarmMember{{MemberID: r.MemberID, Alarm: pb.AlarmType_NOSPACE}}
			}
		case s.quotaAlarm || s.lowSpace:
			if res.Err = s.setQuotaAlarm(false); res.Err == nil {
				s.lowSpace = false
				s.grown = false // until the next commit
				res.Alarms = []*pb.AlarmMember{{MemberID: r.MemberID, Alarm: pb.AlarmType_NOSPACE}}
			}
		}
	default:
		res.Err = msg.ErrAlarmUnsupported
	}
	s.publishNoSpace()
	m.Reply <- res
}

// noSpaceAlarms lists the raised NOSPACE alarms by member ID.
func (s *sequencer) noSpaceAlarms() []*pb.AlarmMember {
	var ids []uint64
	if s.quotaAlarm || s.lowSpace {
		ids = append(ids, s.cfg.MemberID)
	}
	for id := range s.foreignNoSpace {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*pb.AlarmMember, len(ids))
	for i, id := range ids {
		out[i] = &pb.AlarmMember{MemberID: id, Alarm: pb.AlarmType_NOSPACE}
	}
	return out
}

// setQuotaAlarm raises or clears the durable NOSPACE alarm at an
// operator's request. It changes nothing if the log cannot record it.
func (s *sequencer) setQuotaAlarm(on bool) error {
	if s.failed != nil {
		return s.failed
	}
	if s.cfg.Log != nil && on != s.quotaAlarm {
		if err := s.cfg.Log.SetNoSpace(on); err != nil {
			return err
		}
	}
	if s.quotaAlarm != on {
		verb := "cleared"
		if on {
			verb = "raised"
		}
		s.cfg.Logger.Warn("NOSPACE alarm " + verb + " by an alarm request")
	}
	s.quotaAlarm = on
	return nil
}

// publishNoSpace publishes whether any NOSPACE alarm is raised.
func (s *sequencer) publishNoSpace() {
	s.cfg.Revisions.noSpace.Store(s.quotaAlarm || s.lowSpace || len(s.foreignNoSpace) > 0)
}
