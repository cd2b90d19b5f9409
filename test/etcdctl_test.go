package test

// End-to-end tests through the real etcdctl binary: the one client every
// etcd user has, so whatever it prints against etcd it must print against
// MetaStore too. Each test runs its scenario against every selected backend
// (METASTORE_BACKENDS=metastore|etcd, default both), asserts the etcd
// behaviour it spells out, and then compares the normalized transcripts of
// the backends step by step (see etcdctl_helpers_test.go).
//
// Every scenario gets a fresh server per backend, and revisions are written
// relative to the revision the scenario started at (c.rev / c.revArg), so
// the expectations below hold whatever a backend's first revision is. A
// "// rev N" comment marks the write that makes the store revision base+N.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestEtcdctlPutGet(t *testing.T) {
	ctlEachBackend(t, func(c *ctl) {
		p := "ctl-putget/"
		// etcd's store starts at revision 1, and only relative revisions
		// are compared elsewhere, so the start is checked here.
		if c.base != 1 {
			c.t.Errorf("a fresh store is at revision %d; etcd starts at 1", c.base)
		}
		c.record("fresh store revision", c.base)
		c.want("OK\n", "put", p+"a", "1")                                      // rev 1
		c.want(ctlSimpleKVs(p+"a", "1"), "get", p+"a")                         // simple output: key line, value line
		c.want("", "get", p+"missing")                                         // a miss prints nothing and exits 0
		c.want("OK\n", "put", p+"a", "2")                                      // rev 2
		c.want(ctlSimpleKVs("OK", p+"a", "2"), "put", "--prev-kv", p+"a", "3") // rev 3; the old pair follows OK
		c.want("OK\n", "put", "--prev-kv", p+"new", "n")                       // rev 4; no old pair, nothing after OK
		c.want("3\n", "get", "--print-value-only", p+"a")

		// JSON carries the MVCC metadata: create/mod revision and version.
		got := c.getJSON(p + "a")
		want := ctlNRange{Rev: 4, Count: 1, Kvs: []ctlNKV{{Key: p + "a", Value: "3", Create: 1, Mod: 3, Version: 3}}}
		ctlCheck(c, "get a", got, want)

		ctlCheck(c, "put b", c.putJSON(p+"b", "x"), ctlNPut{Rev: 5})
		ctlCheck(c, "put --prev-kv b", c.putJSON("--prev-kv", p+"b", "y"),
			ctlNPut{Rev: 6, PrevKv: &ctlNKV{Key: p + "b", Value: "x", Create: 5, Mod: 5, Version: 1}})

		// --ignore-value rewrites the current value: a new revision and
		// version, same bytes.
		c.want("OK\n", "put", "--ignore-value", p+"b") // rev 7
		ctlCheck(c, "get b after --ignore-value", c.getJSON(p+"b"),
			ctlNRange{Rev: 7, Count: 1, Kvs: []ctlNKV{{Key: p + "b", Value: "y", Create: 5, Mod: 7, Version: 3}}})
		// ... and needs the key to exist; the failed put must not bump the
		// revision.
		c.fails(1, "Error: etcdserver: key not found", "put", "--ignore-value", p+"nokey")
		if rev := c.getJSON(p + "b").Rev; rev != 7 {
			c.t.Errorf("revision after failed put = base+%d, want base+7", rev)
		}

		// Values are bytes: spaces, non-ASCII, newlines and NUL all survive.
		// A value read from stdin is taken verbatim, trailing newline and all.
		c.want("OK\n", "put", p+"space", "hello world") // rev 8
		c.want(ctlSimpleKVs(p+"space", "hello world"), "get", p+"space")
		c.want("OK\n", "put", p+"ключ", "значение") // rev 9
		c.want(ctlSimpleKVs(p+"ключ", "значение"), "get", p+"ключ")
		c.wantIn("line1\nline2\x00end\n", "OK\n", "put", p+"stdin") // rev 10
		ctlCheck(c, "get stdin value", c.getJSON(p+"stdin"),
			ctlNRange{Rev: 10, Count: 1, Kvs: []ctlNKV{{Key: p + "stdin", Value: "line1\nline2\x00end\n", Create: 10, Mod: 10, Version: 1}}})
	})
}

// TestEtcdctlGetRange covers the range flags of `etcdctl get`. The keys are
// written so that every sort target orders them differently and no target
// has ties (etcd's sort is not stable, so a tie would make the expected
// order undefined):
//
//	key     create  mod  version  value
//	P/a        2     9      2     cherry
//	P/b        4     8      3     apple
//	P/c        1     1      1     date
//	P/d        3    10      4     banana
//
// plus "ctl-rang" (before the prefix) and "ctl-range0" (just past the
// prefix's range end, since '0' follows '/').
func TestEtcdctlGetRange(t *testing.T) {
	const p = "ctl-range/"
	a, b, cc, d := p+"a", p+"b", p+"c", p+"d"
	const before, after = "ctl-rang", "ctl-range0"

	type row struct {
		name string
		// args after "get"; a func because some need absolute revisions.
		args      func(c *ctl) []string
		keys      []string
		count     int64
		more      bool
		keysOnly  bool
		atRev     bool     // a historical read: values as of that revision
		oldValues []string // with atRev, the values expected, in keys order
	}
	fixed := func(args ...string) func(*ctl) []string { return func(*ctl) []string { return args } }
	prefix := func(args ...string) func(*ctl) []string { return fixed(append([]string{p, "--prefix"}, args...)...) }
	rows := []row{
		{name: "single key", args: fixed(a), keys: []string{a}, count: 1},
		{name: "prefix", args: prefix(), keys: []string{a, b, cc, d}, count: 4},
		{name: "explicit range end is exclusive", args: fixed(a, cc), keys: []string{a, b}, count: 2},
		{name: "from-key runs to the end of the keyspace", args: fixed(b, "--from-key"), keys: []string{b, cc, d, after}, count: 4},
		{name: "from-key empty is the whole keyspace", args: fixed("", "--from-key"), keys: []string{before, a, b, cc, d, after}, count: 6},
		{name: "prefix empty is the whole keyspace", args: fixed("", "--prefix"), keys: []string{before, a, b, cc, d, after}, count: 6},
		{name: "no match", args: fixed(p+"zzz", "--prefix"), keys: []string{}, count: 0},
		{name: "limit sets more and keeps the full count", args: prefix("--limit", "2"), keys: []string{a, b}, count: 4, more: true},
		{name: "limit equal to the count is not more", args: prefix("--limit", "4"), keys: []string{a, b, cc, d}, count: 4},
		{name: "from-key with limit", args: fixed(b, "--from-key", "--limit", "1"), keys: []string{b}, count: 4, more: true},
		{name: "sort KEY ASCEND", args: prefix("--sort-by=KEY", "--order=ASCEND"), keys: []string{a, b, cc, d}, count: 4},
		{name: "sort KEY DESCEND", args: prefix("--sort-by=KEY", "--order=DESCEND"), keys: []string{d, cc, b, a}, count: 4},
		{name: "order alone sorts by key", args: prefix("--order=DESCEND"), keys: []string{d, cc, b, a}, count: 4},
		{name: "sort CREATE ASCEND", args: prefix("--sort-by=CREATE", "--order=ASCEND"), keys: []string{cc, a, d, b}, count: 4},
		{name: "sort CREATE DESCEND", args: prefix("--sort-by=CREATE", "--order=DESCEND"), keys: []string{b, d, a, cc}, count: 4},
		{name: "sort MODIFY ASCEND", args: prefix("--sort-by=MODIFY", "--order=ASCEND"), keys: []string{cc, b, a, d}, count: 4},
		{name: "sort MODIFY DESCEND", args: prefix("--sort-by=MODIFY", "--order=DESCEND"), keys: []string{d, a, b, cc}, count: 4},
		{name: "sort VERSION ASCEND", args: prefix("--sort-by=VERSION", "--order=ASCEND"), keys: []string{cc, a, b, d}, count: 4},
		{name: "sort VERSION DESCEND", args: prefix("--sort-by=VERSION", "--order=DESCEND"), keys: []string{d, b, a, cc}, count: 4},
		{name: "sort VALUE ASCEND", args: prefix("--sort-by=VALUE", "--order=ASCEND"), keys: []string{b, d, a, cc}, count: 4},
		{name: "sort VALUE DESCEND", args: prefix("--sort-by=VALUE", "--order=DESCEND"), keys: []string{cc, a, d, b}, count: 4},
		// With a non-KEY target and no order the server sorts ASCEND.
		{name: "sort VERSION without order ascends", args: prefix("--sort-by=VERSION"), keys: []string{cc, a, b, d}, count: 4},
		// The server sorts the whole range first and then applies the limit.
		{name: "sort MODIFY DESCEND limit 2", args: prefix("--sort-by=MODIFY", "--order=DESCEND", "--limit=2"), keys: []string{d, a}, count: 4, more: true},
		// etcd quirk: with no order given, etcdctl sends SortOrder NONE, so
		// the server applies the limit in key order first and only then
		// sorts the survivors ascending (a, b sorted by value is b, a).
		{name: "sort VALUE without order limits before sorting", args: prefix("--sort-by=VALUE", "--limit=2"), keys: []string{b, a}, count: 4, more: true},
		{name: "sort VALUE limit 3", args: prefix("--sort-by=VALUE", "--order=ASCEND", "--limit=3"), keys: []string{b, d, a}, count: 4, more: true},
		{name: "keys-only", args: prefix("--keys-only"), keys: []string{a, b, cc, d}, count: 4, keysOnly: true},
		{name: "keys-only with sort and limit", args: prefix("--keys-only", "--sort-by=CREATE", "--order=DESCEND", "--limit=1"), keys: []string{b}, count: 4, more: true, keysOnly: true},
		{name: "serializable", args: prefix("--consistency=s"), keys: []string{a, b, cc, d}, count: 4},
		{name: "min-mod-rev", args: func(c *ctl) []string { return []string{p, "--prefix", "--min-mod-rev=" + c.revArg(9)} },
			keys: []string{a, d}, count: 4},
		{name: "max-create-rev", args: func(c *ctl) []string { return []string{p, "--prefix", "--max-create-rev=" + c.revArg(2)} },
			keys: []string{a, cc}, count: 4},
		{name: "prefix at an old revision", args: func(c *ctl) []string { return []string{p, "--prefix", "--rev=" + c.revArg(4)} },
			keys: []string{a, b, cc, d}, count: 4, atRev: true, oldValues: []string{"old", "old", "date", "old"}},
		{name: "prefix at an old revision sorted by MODIFY", args: func(c *ctl) []string {
			return []string{p, "--prefix", "--rev=" + c.revArg(6), "--sort-by=MODIFY", "--order=ASCEND"}
		}, keys: []string{cc, a, d, b}, count: 4, atRev: true, oldValues: []string{"date", "old", "old", "old"}},
	}

	ctlEachBackend(t, func(c *ctl) {
		for _, w := range [][2]string{
			{cc, "date"}, {a, "old"}, {d, "old"}, {b, "old"}, // revs 1-4: creates
			{d, "old"}, {b, "old"}, {d, "old"}, // revs 5-7
			{b, "apple"}, {a, "cherry"}, {d, "banana"}, // revs 8-10: final values
			{after, "outside-after"}, {before, "outside-before"}, // revs 11-12
		} {
			c.want("OK\n", "put", w[0], w[1])
		}
		final := map[string]ctlNKV{
			a:      {Key: a, Value: "cherry", Create: 2, Mod: 9, Version: 2},
			b:      {Key: b, Value: "apple", Create: 4, Mod: 8, Version: 3},
			cc:     {Key: cc, Value: "date", Create: 1, Mod: 1, Version: 1},
			d:      {Key: d, Value: "banana", Create: 3, Mod: 10, Version: 4},
			after:  {Key: after, Value: "outside-after", Create: 11, Mod: 11, Version: 1},
			before: {Key: before, Value: "outside-before", Create: 12, Mod: 12, Version: 1},
		}

		for _, r := range rows {
			got := c.getJSON(r.args(c)...)
			if !slices.Equal(ctlKeys(got.Kvs), r.keys) || got.Count != r.count || got.More != r.more {
				c.t.Errorf("%s: got keys %q count %d more %v, want keys %q count %d more %v",
					r.name, ctlKeys(got.Kvs), got.Count, got.More, r.keys, r.count, r.more)
				continue
			}
			// The header always carries the current revision, even for a
			// read at an older one.
			if got.Rev != 12 {
				c.t.Errorf("%s: header revision base+%d, want base+12", r.name, got.Rev)
			}
			for i, kv := range got.Kvs {
				want := final[kv.Key]
				switch {
				case r.keysOnly:
					want.Value = ""
				case r.atRev:
					// Only the value is spelled out; the full KVs are still
					// compared across backends through the transcript.
					want = kv
					want.Value = r.oldValues[i]
				}
				if kv != want {
					c.t.Errorf("%s: kv %d = %+v, want %+v", r.name, i, kv, want)
				}
			}
		}

		// Simple output of a range: key line, value line, per key in order;
		// --keys-only prints the key and an empty value line.
		c.want(ctlSimpleKVs(a, "cherry", b, "apple", cc, "date", d, "banana"), "get", p, "--prefix")
		c.want(ctlSimpleKVs(b, "apple", d, "banana"), "get", p, "--prefix", "--sort-by=VALUE", "--order=ASCEND", "--limit=2")
		c.want(ctlSimpleKVs(a, "", b, ""), "get", p, "--prefix", "--keys-only", "--limit=2")
		c.want(ctlSimpleKVs("cherry", "apple"), "get", p, "--prefix", "--print-value-only", "--limit=2")

		// --count-only is only accepted with -w fields (etcdctl checks that
		// after the request), and then prints no KVs, just More and Count.
		// The header lines carry cluster identities, so only the KV lines
		// are recorded.
		args := []string{"get", p, "--prefix", "--count-only", "-w", "fields"}
		res := c.exec("", args...)
		if res.code != 0 {
			c.t.Fatalf("etcdctl %q: exit %d, stderr:\n%s", args, res.code, res.stderr)
		}
		out := res.stdout
		var kept []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, `"Key"`) || strings.HasPrefix(l, `"More"`) || strings.HasPrefix(l, `"Count"`) {
				kept = append(kept, l)
			}
		}
		if want := []string{`"More" : false`, `"Count" : 4`}; !slices.Equal(kept, want) {
			c.t.Errorf("get --count-only -w fields: got lines %q, want %q; output:\n%s", kept, want, out)
		}
		c.record("get --count-only -w fields (More/Count lines)", kept)
		c.fails(128, "Error: --count-only is only for `--write-out=fields`", "get", p, "--prefix", "--count-only", "-w", "json")
	})
}

// TestEtcdctlGetRev reads history with --rev: every revision of a key that
// was overwritten, deleted and recreated, and the errors for revisions the
// store cannot serve.
func TestEtcdctlGetRev(t *testing.T) {
	ctlEachBackend(t, func(c *ctl) {
		p := "ctl-rev/"
		k := p + "k"
		c.want("OK\n", "put", k, "v1")        // rev 1
		c.want("OK\n", "put", k, "v2")        // rev 2
		c.want("OK\n", "put", p+"other", "x") // rev 3
		c.want("1\n", "del", k)               // rev 4
		c.want("OK\n", "put", k, "v3")        // rev 5: a new incarnation, version restarts

		type want struct {
			rel int64
			kvs []ctlNKV
		}
		for _, w := range []want{
			{0, nil}, // before the key existed (skipped below if that is revision 0)
			{1, []ctlNKV{{Key: k, Value: "v1", Create: 1, Mod: 1, Version: 1}}},
			{2, []ctlNKV{{Key: k, Value: "v2", Create: 1, Mod: 2, Version: 2}}},
			{3, []ctlNKV{{Key: k, Value: "v2", Create: 1, Mod: 2, Version: 2}}}, // unchanged by another key's write
			{4, nil}, // deleted
			{5, []ctlNKV{{Key: k, Value: "v3", Create: 5, Mod: 5, Version: 1}}},
		} {
			if c.rev(w.rel) <= 0 {
				// --rev=0 means "latest" to etcdctl; TestEtcdctlPutGet
				// reports the bad start revision. The placeholder keeps the
				// transcripts aligned.
				c.record("get --rev=0 (skipped)", "skipped: the store started at revision 0")
				continue
			}
			got := c.getJSON(k, "--rev="+c.revArg(w.rel))
			wantR := ctlNRange{Rev: 5, Kvs: w.kvs, Count: int64(len(w.kvs))}
			ctlCheck(c, fmt.Sprintf("get k --rev=base+%d", w.rel), got, wantR)
		}
		// Simple output at a revision, and a whole prefix at a revision.
		c.want(ctlSimpleKVs(k, "v2"), "get", k, "--rev="+c.revArg(2))
		c.want(ctlSimpleKVs(p+"other", "x"), "get", p, "--prefix", "--rev="+c.revArg(4))
		c.want(ctlSimpleKVs(k, "v2", p+"other", "x"), "get", p, "--prefix", "--rev="+c.revArg(3))

		// A revision past the current one is an error, not an empty read.
		c.fails(1, "Error: etcdserver: mvcc: required revision is a future revision",
			"get", k, "--rev="+c.revArg(6))
		c.fails(1, "Error: etcdserver: mvcc: required revision is a future revision",
			"get", p, "--prefix", "--rev="+c.revArg(1000))
	})
}

func TestEtcdctlDel(t *testing.T) {
	ctlEachBackend(t, func(c *ctl) {
		p := "ctl-del/"
		for _, k := range []string{"a", "b", "c/x", "c/y", "c/z", "d", "e"} { // revs 1-7
			c.want("OK\n", "put", p+k, "v-"+k)
		}
		c.want("OK\n", "put", "ctl-del0", "outside") // rev 8: just past the prefix

		// Simple output: the number deleted, then with --prev-kv the old
		// pairs as key line, value line.
		c.want("1\n", "del", p+"a")                                        // rev 9
		c.want("0\n", "del", p+"a")                                        // a miss: no new revision
		c.want(ctlSimpleKVs("1", p+"b", "v-b"), "del", "--prev-kv", p+"b") // rev 10

		// A miss must not create a revision: deleted is 0 (absent from the
		// JSON) and the header still shows the last write.
		ctlCheck(c, "del miss", c.delJSON(p+"nothing"), ctlNDel{Rev: 10})

		// A multi-key delete is one revision; --prev-kv returns the deleted
		// KVs with their full metadata, in key order.
		ctlCheck(c, "del --prefix --prev-kv c/", c.delJSON("--prefix", "--prev-kv", p+"c/"), ctlNDel{Rev: 11, Deleted: 3, PrevKvs: []ctlNKV{
			{Key: p + "c/x", Value: "v-c/x", Create: 3, Mod: 3, Version: 1},
			{Key: p + "c/y", Value: "v-c/y", Create: 4, Mod: 4, Version: 1},
			{Key: p + "c/z", Value: "v-c/z", Create: 5, Mod: 5, Version: 1},
		}})
		// An explicit range end; --range skips etcdctl's 2s safety pause.
		c.want("1\n", "del", "--range", p+"d", p+"e") // rev 12
		c.want("1\n", "del", "--prefix", p)           // rev 13: only e is left
		ctlCheck(c, "prefix after deletes", c.getJSON(p, "--prefix"), ctlNRange{Rev: 13})
		c.want(ctlSimpleKVs("ctl-del0", "outside"), "get", "ctl-del0") // the prefix end held

		// Deleted keys stay readable in history.
		c.want(ctlSimpleKVs(p+"c/x", "v-c/x", p+"c/y", "v-c/y", p+"c/z", "v-c/z"),
			"get", p+"c/", "--prefix", "--rev="+c.revArg(10))
		// A recreated key starts over at version 1 with a new create revision.
		ctlCheck(c, "recreate a", c.putJSON(p+"a", "again"), ctlNPut{Rev: 14})
		ctlCheck(c, "get recreated a", c.getJSON(p+"a"),
			ctlNRange{Rev: 14, Count: 1, Kvs: []ctlNKV{{Key: p + "a", Value: "again", Create: 14, Mod: 14, Version: 1}}})
		// --from-key deletes to the end of the keyspace.
		c.want("2\n", "del", "--from-key", p+"a") // rev 15: ctl-del/a and ctl-del0
	})
}

// TestEtcdctlTxn feeds `etcdctl txn` on stdin: compares, a blank line, the
// success ops, a blank line, the failure ops, a blank line. etcdctl reads
// each section up to a blank line and fails with "Error: EOF" if the input
// ends first, so every input here ends with the blank line that closes the
// failure section.
func TestEtcdctlTxn(t *testing.T) {
	const p = "ctl-txn/"
	k := p + "k"
	type row struct {
		name string
		// stdin; a func because revision compares need absolute revisions.
		in   func(c *ctl) string
		want string
	}
	fixed := func(s string) func(*ctl) string { return func(*ctl) string { return s } }
	rows := []row{
		{
			// Simple output: SUCCESS or FAILURE, then per op a blank line and
			// that op's own simple output (OK, the KVs of a get, the count
			// of a del).
			name: "value equal takes the success branch",
			in:   fixed(`value("` + k + `") = "v"` + "\n\nput " + k + " v2\nget " + k + "\n\nput " + k + " bad\n\n"),
			want: "SUCCESS\n\nOK\n\n" + k + "\nv2\n", // rev 2
		},
		{
			name: "value mismatch takes the failure branch",
			in:   fixed(`value("` + k + `") = "v"` + "\n\nput " + k + " bad\n\nput " + p + "other o\nget " + k + "\n\n"),
			want: "FAILURE\n\nOK\n\n" + k + "\nv2\n", // rev 3
		},
		{
			name: "version, create and mod compares all hold",
			in: func(c *ctl) string {
				return fmt.Sprintf("version(%q) = \"2\"\ncreate(%q) = \"%d\"\nmod(%q) = \"%d\"\n\ndel %s\n\n\n",
					k, k, c.rev(1), k, c.rev(2), p+"other")
			},
			want: "SUCCESS\n\n1\n", // rev 4
		},
		{
			name: "one false compare fails the txn",
			in: func(c *ctl) string {
				return fmt.Sprintf("version(%q) = \"2\"\nmod(%q) > \"%d\"\n\nput %s x\n\nget %s --print-value-only\n\n", k, k, c.rev(2), k, k)
			},
			// --print-value-only inside a txn op only shapes the request;
			// etcdctl still prints key and value.
			want: "FAILURE\n\n" + k + "\nv2\n",
		},
		{
			name: "a missing key has version 0 and create 0",
			in:   fixed(fmt.Sprintf("version(%q) = \"0\"\ncreate(%q) = \"0\"\n\nput %s c\n\n\n", p+"missing", p+"missing", p+"created")),
			want: "SUCCESS\n\nOK\n", // rev 5
		},
		{
			// etcd fails every value compare against a missing key, even !=.
			name: "value compare on a missing key is false",
			in:   fixed(fmt.Sprintf("value(%q) != \"x\"\n\nput %s b\n\nget %s\n\n", p+"missing", p+"bad", p+"missing")),
			want: "FAILURE\n\n", // a get that finds nothing prints nothing
		},
		{
			name: "greater and less compare bytes",
			in:   fixed(fmt.Sprintf("value(%q) > \"v1\"\nvalue(%q) < \"v3\"\nversion(%q) != \"1\"\n\nget %s\n\n\n", k, k, k, k)),
			want: "SUCCESS\n\n" + k + "\nv2\n",
		},
		{
			name: "no compares means success",
			in:   fixed("\nput " + p + "e 1\n\nput " + p + "e bad\n\n"),
			want: "SUCCESS\n\nOK\n", // rev 6
		},
		{
			name: "empty branches",
			in:   fixed(fmt.Sprintf("value(%q) = \"nope\"\n\n\n\n", k)),
			want: "FAILURE\n",
		},
		{
			name: "ops take their flags",
			in:   fixed(fmt.Sprintf("\nput --prev-kv %s v3\nget %s --prefix --keys-only --limit=2\ndel --prev-kv %s\n\n\n", k, p, p+"e")),
			// rev 7: put prints OK and the old pair, get the keys with empty
			// values, del the count and the old pair.
			want: "SUCCESS\n\nOK\n" + k + "\nv2\n\n" + p + "created\n\n" + p + "e\n\n\n1\n" + p + "e\n1\n",
		},
	}

	ctlEachBackend(t, func(c *ctl) {
		c.want("OK\n", "put", k, "v") // rev 1
		for _, r := range rows {
			in := r.in(c)
			if got := c.okIn(in, "txn"); got != r.want {
				c.t.Errorf("%s: txn <<%q\n got stdout %q\nwant stdout %q", r.name, in, got, r.want)
			}
		}
		if got := c.getJSON(p, "--prefix"); got.Rev != 7 {
			c.t.Errorf("after the txns: revision base+%d, want base+7 (one per writing txn, none for read-only or empty ones)", got.Rev)
		}

		// A txn is one revision however many keys it writes, and those keys
		// span shards on MetaStore; all of them get the same mod revision.
		in := "\n"
		for i := range 6 {
			in += fmt.Sprintf("put %sm/%d %d\n", p, i, i)
		}
		in += "\n\n"
		c.wantIn(in, "SUCCESS\n"+strings.Repeat("\nOK\n", 6), "txn") // rev 8
		got := c.getJSON(p+"m/", "--prefix")
		if len(got.Kvs) != 6 {
			c.t.Fatalf("multi-put txn: got %d keys, want 6", len(got.Kvs))
		}
		for _, kv := range got.Kvs {
			if kv.Create != 8 || kv.Mod != 8 || kv.Version != 1 {
				c.t.Errorf("multi-put txn: %+v, want create=mod=base+8, version 1", kv)
			}
		}

		// -w json: etcdctl's TxnResponseJSON, one {"Response": {...}} per op
		// with each op's own header. Both branches.
		ctlCheck(c, "txn -w json success", c.txnJSON(fmt.Sprintf("mod(%q) = \"%d\"\n\nput %s w\nget %s\ndel %s\n\n\n", k, c.rev(7), k, k, p+"m/0")),
			ctlNTxn{Rev: 9, Succeeded: true, Responses: []any{
				map[string]ctlNPut{"put": {Rev: 9}},
				map[string]ctlNRange{"range": {Rev: 9, Count: 1, Kvs: []ctlNKV{{Key: k, Value: "w", Create: 1, Mod: 9, Version: 4}}}},
				map[string]ctlNDel{"delete": {Rev: 9, Deleted: 1}},
			}})
		ctlCheck(c, "txn -w json failure", c.txnJSON(fmt.Sprintf("value(%q) = \"nope\"\n\nput %s x\n\nget %s --prefix --count-only\n\n", k, k, p+"m/")),
			ctlNTxn{Rev: 9, Succeeded: false, Responses: []any{
				map[string]ctlNRange{"range": {Rev: 9, Count: 5}},
			}})

		// The server rejects a txn that writes one key twice in a branch.
		c.failsIn(fmt.Sprintf("\nput %s 1\nput %s 2\n\n\n", p+"dup", p+"dup"), 1,
			"Error: etcdserver: duplicate key given in txn request", "txn")
		// Input that ends before the blank line closing the failure ops is
		// rejected by etcdctl itself (exit 3, ExitInvalidInput).
		c.failsIn(`value("`+k+`") = "w"`+"\n\nput "+k+" v2\n\nget "+k+"\n", 3, "Error: EOF", "txn")
		if got := c.getJSON(k).Rev; got != 9 {
			c.t.Errorf("failed txns changed the revision to base+%d, want base+9", got)
		}
	})
}

// TestEtcdctlCompaction compacts history with `etcdctl compaction` and
// checks which revisions stay readable and the errors for the rest.
func TestEtcdctlCompaction(t *testing.T) {
	ctlEachBackend(t, func(c *ctl) {
		p := "ctl-compact/"
		k := p + "k"
		for i := 1; i <= 4; i++ { // revs 1-4
			c.want("OK\n", "put", k, fmt.Sprintf("v%d", i))
		}
		c.want("OK\n", "put", p+"gone", "g") // rev 5
		c.want("1\n", "del", p+"gone")       // rev 6
		c.want("OK\n", "put", k, "v5")       // rev 7

		// The output names the absolute revision; record it relative.
		compact := func(rel int64, extra ...string) {
			c.t.Helper()
			args := append([]string{"compaction"}, extra...)
			args = append(args, c.revArg(rel))
			out := c.exec("", args...)
			if want := fmt.Sprintf("compacted revision %d\n", c.rev(rel)); out.code != 0 || out.stdout != want {
				c.t.Fatalf("etcdctl %q: exit %d, stdout %q, stderr %q; want stdout %q", args, out.code, out.stdout, out.stderr, want)
			}
			c.record(fmt.Sprintf("compaction base+%d", rel), "ok")
		}
		compact(3)

		const compacted = "Error: etcdserver: mvcc: required revision has been compacted"
		c.fails(1, compacted, "get", k, "--rev="+c.revArg(2))
		c.fails(1, compacted, "get", k, "--rev="+c.revArg(1))
		c.fails(1, compacted, "get", p, "--prefix", "--rev="+c.revArg(2))
		// The compaction revision itself and everything after stay readable.
		c.want(ctlSimpleKVs(k, "v3"), "get", k, "--rev="+c.revArg(3))
		c.want(ctlSimpleKVs(p+"gone", "g", k, "v4"), "get", p, "--prefix", "--rev="+c.revArg(5))
		c.want(ctlSimpleKVs(k, "v5"), "get", p, "--prefix")
		// Compacting does not rewrite what survives: the live key keeps its
		// create revision and version.
		ctlCheck(c, "get k after compaction", c.getJSON(k),
			ctlNRange{Rev: 7, Count: 1, Kvs: []ctlNKV{{Key: k, Value: "v5", Create: 1, Mod: 7, Version: 5}}})

		// Compacting again at or below the compacted revision, or beyond
		// the current one, is an error.
		c.fails(1, compacted, "compaction", c.revArg(3))
		c.fails(1, compacted, "compaction", c.revArg(2))
		c.fails(1, "Error: etcdserver: mvcc: required revision is a future revision", "compaction", c.revArg(8))

		// Compaction past a delete drops the tombstone: nothing is left of
		// the deleted key at the compacted revision.
		compact(6, "--physical")
		c.fails(1, compacted, "get", p, "--prefix", "--rev="+c.revArg(5))
		c.want(ctlSimpleKVs(k, "v4"), "get", p, "--prefix", "--rev="+c.revArg(6))
		// Compacting up to the current revision is allowed.
		compact(7)
		c.want(ctlSimpleKVs(k, "v5"), "get", p, "--prefix", "--rev="+c.revArg(7))
		// Writes go on from where they were.
		ctlCheck(c, "put after compaction", c.putJSON(k, "v6"), ctlNPut{Rev: 8})
	})
}

// ctlCheck reports got != want, both normalized, with the step's name. It
// compares the JSON encodings: they follow pointers and print readably.
func ctlCheck[T any](c *ctl, what string, got, want T) {
	c.t.Helper()
	g, err1 := json.Marshal(got)
	w, err2 := json.Marshal(want)
	if err1 != nil || err2 != nil {
		c.t.Fatalf("%s: marshal: %v %v", what, err1, err2)
	}
	if string(g) != string(w) {
		c.t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}
