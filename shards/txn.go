package shards

import pb "go.etcd.io/etcd/api/v3/etcdserverpb"

func execTxn(o *overlay, env *evalEnv, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	// etcd decides every branch, nested ones included, against the state
	// before the Txn runs, then checks the chosen operations, then runs them.
	path, err := txnPath(o, r, nil)
	if err != nil {
		return nil, err
	}
	if _, err := checkTxn(o, env, r, path); err != nil {
		return nil, err
	}
	resp, _, err := runTxn(o, r, path)
	if err != nil {
		return nil, err
	}
	resp.Header = &pb.ResponseHeader{Revision: o.headerRev()}
	return resp, nil
}

// txnPath appends the outcome of r's compares and of every nested Txn on the
// taken branch, depth first, as etcd's compareToPath does.
func txnPath(rd reader, r *pb.TxnRequest, path []bool) ([]bool, error) {
	ok, err := compares(rd, r.Compare)
	if err != nil {
		return nil, err
	}
	path = append(path, ok)
	for _, op := range branch(r, ok) {
		if t := op.GetRequestTxn(); t != nil {
			if path, err = txnPath(rd, t, path); err != nil {
				return nil, err
			}
		}
	}
	return path, nil
}

func branch(r *pb.TxnRequest, succeeded bool) []*pb.RequestOp {
	if succeeded {
		return r.Success
	}
	return r.Failure
}

// checkTxn fails the Txn as etcd's checkTxn does, on the taken path only,
// against the state before the Txn. It returns how many path entries the
// nested Txns used.
func checkTxn(rd reader, env *evalEnv, r *pb.TxnRequest, path []bool) (int, error) {
	used := 0
	for _, op := range branch(r, path[0]) {
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if err := env.checkRev(tv.RequestRange.Revision); err != nil {
				return 0, err
			}
		case *pb.RequestOp_RequestPut:
			if err := env.checkLease(tv.RequestPut.Lease); err != nil {
				return 0, err
			}
			if err := checkPutPrev(rd, tv.RequestPut); err != nil {
				return 0, err
			}
		case *pb.RequestOp_RequestTxn:
			n, err := checkTxn(rd, env, tv.RequestTxn, path[1+used:])
			if err != nil {
				return 0, err
			}
			used += n + 1
		}
	}
	return used, nil
}

// runTxn runs the taken branch of r in order; every operation sees the
// writes of those before it. Nested responses carry only a revision in their
// header, as etcd's do.
func runTxn(o *overlay, r *pb.TxnRequest, path []bool) (*pb.TxnResponse, int, error) {
	ops := branch(r, path[0])
	resp := &pb.TxnResponse{Succeeded: path[0], Responses: make([]*pb.ResponseOp, len(ops))}
	used := 0
	for i, op := range ops {
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rr := tv.RequestRange
			cur := o.headerRev()
			rev := int64(latest)
			if rr.Revision > 0 {
				rev = rr.Revision
			}
			rresp, err := evalRange(o, rr, rev)
			if err != nil {
				return nil, 0, err
			}
			rresp.Header = &pb.ResponseHeader{Revision: cur}
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: rresp}}
		case *pb.RequestOp_RequestPut:
			presp, err := doPut(o, tv.RequestPut)
			if err != nil {
				return nil, 0, err
			}
			presp.Header = &pb.ResponseHeader{Revision: o.rev}
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: presp}}
		case *pb.RequestOp_RequestDeleteRange:
			dresp, err := execDelete(o, tv.RequestDeleteRange)
			if err != nil {
				return nil, 0, err
			}
			dresp.Header = &pb.ResponseHeader{Revision: o.headerRev()}
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dresp}}
		case *pb.RequestOp_RequestTxn:
			tresp, n, err := runTxn(o, tv.RequestTxn, path[1+used:])
			if err != nil {
				return nil, 0, err
			}
			tresp.Header = &pb.ResponseHeader{}
			used += n + 1
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: tresp}}
		}
	}
	return resp, used, nil
}

// IsTxnReadOnly reports whether a Txn has only ranges on both branches (a
// nested Txn counts as a write, as in etcd).
func IsTxnReadOnly(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if op.GetRequestRange() == nil {
				return false
			}
		}
	}
	return true
}
