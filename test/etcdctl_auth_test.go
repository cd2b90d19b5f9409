package test

// Auth through the real etcdctl, on both backends, with the transcripts
// compared (see etcdctl_helpers_test.go): setting up users, roles and
// permissions and turning auth on the way the etcd docs do it, then
// working as a user by password (--user) and, over TLS with
// --client-cert-auth, by the common name of the client certificate.

import (
	"crypto/x509"
	"path/filepath"
	"testing"
)

// TestEtcdctlAuth: the etcd docs' walk-through. Auth revisions are
// absolute: a fresh store is at 1 and each change below adds one.
func TestEtcdctlAuth(t *testing.T) {
	ctlEachBackendWith(t, []serverOption{withBcryptCost(authBcryptCost)}, func(c *ctl) {
		c.want("User root created\n", "user", "add", "root:root-pw")
		c.want("Role r created\n", "role", "add", "r")
		c.want("Role r updated\n", "role", "grant-permission", "r", "readwrite", "/a/", "--prefix")
		c.want("Role r updated\n", "role", "grant-permission", "r", "read", "/c")
		c.want("User alice created\n", "user", "add", "alice:alice-pw")
		c.want("Role r is granted to user alice\n", "user", "grant-role", "alice", "r")
		c.want("Role root is granted to user root\n", "user", "grant-role", "root", "root")
		c.want("Authentication Status: false\nAuthRevision: 8\n", "auth", "status")
		c.want("Authentication Enabled\n", "auth", "enable")

		alice, root := "--user=alice:alice-pw", "--user=root:root-pw"
		c.want("OK\n", alice, "put", "/a/x", "1")
		c.want(ctlSimpleKVs("/a/x", "1"), alice, "get", "/a/x")
		c.want(ctlSimpleKVs("/a/x", "1"), "--user=alice", "--password=alice-pw", "get", "/a/", "--prefix")
		c.want("", alice, "get", "/c")
		c.fails(1, "Error: etcdserver: permission denied", alice, "get", "/b")
		c.fails(1, "Error: etcdserver: permission denied", alice, "put", "/c", "1")
		c.fails(1, "Error: etcdserver: permission denied", alice, "get", "/a", "--prefix")
		c.fails(1, "Error: etcdserver: permission denied", alice, "get", "/a/", "--from-key")
		c.fails(1, "Error: etcdserver: permission denied", alice, "del", "/a", "--prefix")
		c.fails(1, "Error: etcdserver: permission denied", alice, "user", "list")
		c.fails(1, "Error: etcdserver: permission denied", alice, "auth", "disable")
		c.want("User: alice\nRoles: r\n", alice, "user", "get", "alice")
		c.fails(1, "Error: etcdserver: user name is empty", "get", "/a/x")
		c.fails(1, "Error: etcdserver: user name is empty", "put", "/a/x", "2")
		// A failed login fails the connection: exit code 2.
		c.fails(2, "Error: etcdserver: authentication failed, invalid user ID or password", "--user=alice:wrong", "get", "/a/x")
		c.fails(2, "Error: etcdserver: authentication failed, invalid user ID or password", "--user=mallory:x", "get", "/a/x")

		c.want(ctlSimpleKVs("/a/x", "1"), root, "get", "/a/x")
		c.want("OK\n", root, "put", "/b", "root")
		c.want("alice\nroot\n", root, "user", "list")
		// root holds the role root, which was never created.
		c.want("r\n", root, "role", "list")
		c.want("User: root\nRoles: root\n", root, "user", "get", "root")
		c.fails(1, "Error: etcdserver: role name not found", root, "role", "get", "root")
		c.want("Role r\nKV Read:\n\t[/a/, /a0) (prefix /a/)\n\t/c\nKV Write:\n\t[/a/, /a0) (prefix /a/)\n", root, "role", "get", "r")
		c.want("Authentication Status: true\nAuthRevision: 8\n", root, "auth", "status")
		c.fails(1, "Error: etcdserver: invalid auth management", root, "user", "delete", "root")

		c.wantIn("alice-new\n", "Password updated\n", root, "user", "passwd", "alice", "--interactive=false")
		c.fails(2, "Error: etcdserver: authentication failed, invalid user ID or password", alice, "get", "/a/x")
		c.want(ctlSimpleKVs("/a/x", "1"), "--user=alice:alice-new", "get", "/a/x")
		c.want("Permission of range [/a/, /a0) is revoked from role r\n", root, "role", "revoke-permission", "r", "/a/", "--prefix")
		c.fails(1, "Error: etcdserver: permission denied", "--user=alice:alice-new", "get", "/a/x")
		c.want("Authentication Status: true\nAuthRevision: 10\n", root, "auth", "status")

		c.want("Authentication Disabled\n", root, "auth", "disable")
		c.want("Authentication Status: false\nAuthRevision: 11\n", "auth", "status")
		c.want(ctlSimpleKVs("/b", "root"), "get", "/b")
		// With auth off, credentials are not even checked.
		c.want(ctlSimpleKVs("/b", "root"), "--user=alice:wrong", "get", "/b")
	})
}

// TestEtcdctlAuthClientCert: over TLS with --client-cert-auth, a request
// without a token acts as the user named by its certificate's common
// name, and a token, when given, wins over it. A certificate naming no
// user gets nothing. Here alice has no password at all, and `auth enable`
// creates the root role itself (etcdctl does when root lacks it).
func TestEtcdctlAuthClientCert(t *testing.T) {
	bin := buildBinary(t, etcdctlCmd)
	var done []*ctl
	for _, name := range selectedBackends(t) {
		t.Run(name, func(t *testing.T) {
			f := newTLSFiles(t)
			aliceCert, aliceKey := filepath.Join(f.dir, "alice.pem"), filepath.Join(f.dir, "alice-key.pem")
			f.issue(t, "alice", x509.ExtKeyUsageClientAuth, aliceCert, aliceKey)
			endpoint, _ := startTLSBackend(t, name, f, withBcryptCost(authBcryptCost))
			c := &ctl{t: t, backend: name, bin: bin, endpoint: "https://" + endpoint}
			asAlice := func(args ...string) []string {
				return append([]string{"--cacert=" + f.caFile, "--cert=" + aliceCert, "--key=" + aliceKey}, args...)
			}
			// The certificate named "client" names no user.
			asClient := func(args ...string) []string {
				return append([]string{"--cacert=" + f.caFile, "--cert=" + f.clientCert, "--key=" + f.clientKey}, args...)
			}

			c.want("User root created\n", asClient("user", "add", "root:root-pw")...)
			c.want("Role r created\n", asClient("role", "add", "r")...)
			c.want("Role r updated\n", asClient("role", "grant-permission", "r", "readwrite", "/a/", "--prefix")...)
			c.want("User alice created\n", asClient("user", "add", "alice", "--no-password")...)
			c.want("Role r is granted to user alice\n", asClient("user", "grant-role", "alice", "r")...)
			c.want("Authentication Enabled\n", asClient("auth", "enable")...)
			c.want("r\nroot\n", asClient("--user=root:root-pw", "role", "list")...)
			c.want("Role root\nKV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n", asClient("--user=root:root-pw", "role", "get", "root")...)

			c.want("OK\n", asAlice("put", "/a/x", "1")...)
			c.want(ctlSimpleKVs("/a/x", "1"), asAlice("get", "/a/x")...)
			c.fails(1, "Error: etcdserver: permission denied", asAlice("get", "/b")...)
			c.fails(1, "Error: etcdserver: permission denied", asAlice("put", "/b", "1")...)
			c.fails(1, "Error: etcdserver: permission denied", asAlice("user", "list")...)
			c.want("User: alice\nRoles: r\n", asAlice("user", "get", "alice")...)
			// alice has no password to log in with; etcd's status for that
			// has code Unknown, which etcdctl prints whole.
			c.fails(2, "Error: rpc error: code = Unknown desc = auth: authentication failed, password was given for no password user", asAlice("--user=alice:x", "get", "/a/x")...)

			c.fails(1, "Error: etcdserver: permission denied", asClient("get", "/a/x")...)
			c.fails(1, "Error: etcdserver: user name not found", asClient("user", "list")...)
			c.want(ctlSimpleKVs("/a/x", "1"), asClient("--user=root:root-pw", "get", "/a/x")...)
			c.want("OK\n", asAlice("--user=root:root-pw", "put", "/b", "root")...)
			c.want(ctlSimpleKVs("/b", "root"), asClient("--user=root:root-pw", "get", "/b")...)
			if !t.Failed() {
				done = append(done, c)
			}
		})
	}
	for _, other := range done[min(1, len(done)):] {
		ctlCompare(t, done[0], other)
	}
}
