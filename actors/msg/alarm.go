package msg

import (
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Alarm asks the sequencer, which owns the NOSPACE alarm, to list, raise
// or clear alarms as etcd's Maintenance.Alarm does. Req.Action GET lists
// the active alarms of type Req.Alarm (NONE: of every type); ACTIVATE
// raises alarm Req.Alarm for member Req.MemberID; DEACTIVATE clears it.
// The answer on Reply lists the alarms listed, raised (or already raised)
// or cleared, ordered by type then member ID. With a log, raising or
// clearing this member's NOSPACE alarm is answered once it is durable.
type Alarm struct {
	Req   *pb.AlarmRequest
	Reply chan<- AlarmResult
}

// AlarmResult answers Alarm: the alarms, or ErrAlarmUnsupported, or the
// log's failure.
type AlarmResult struct {
	Alarms []*pb.AlarmMember
	Err    error
}

// ErrAlarmUnsupported: an alarm request MetaStore cannot act on, such as
// raising the CORRUPT alarm (MetaStore has no corruption check that would
// refuse requests under it and clear it again).
var ErrAlarmUnsupported = errors.New("only the NOSPACE alarm can be raised")
