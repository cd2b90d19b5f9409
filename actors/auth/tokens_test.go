package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newSimple(t *testing.T, ttl time.Duration) *simpleTokens {
	t.Helper()
	tk, err := newTokens("simple", ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tk.(*simpleTokens)
}

func mustAssign(t *testing.T, tk tokens, user string, rev uint64) string {
	t.Helper()
	token, err := tk.assign(user, rev)
	if err != nil {
		t.Fatalf("assign(%s, %d): %v", user, rev, err)
	}
	return token
}

func TestNewTokensKinds(t *testing.T) {
	for _, spec := range []string{"", "simple"} {
		tk, err := newTokens(spec, 0)
		if err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
		st, ok := tk.(*simpleTokens)
		if !ok || st.ttl != DefaultTokenTTL {
			t.Fatalf("%q: %T %+v, want simple tokens with the default TTL", spec, tk, tk)
		}
	}
	if st := newSimple(t, time.Minute); st.ttl != time.Minute {
		t.Fatalf("ttl %v, want 1m", st.ttl)
	}
}

var simpleTokenFormat = regexp.MustCompile(`^[a-zA-Z]{16}\.[0-9]+$`)

// TestSimpleTokenAssign: a token is etcd's shape, unique, and names its
// user at the revision current when it is looked at, not the one it was
// issued at.
func TestSimpleTokenAssign(t *testing.T) {
	tk := newSimple(t, time.Minute)
	seen := map[string]bool{}
	for range 100 {
		token := mustAssign(t, tk, "alice", 3)
		if !simpleTokenFormat.MatchString(token) {
			t.Fatalf("token %q is not <16 letters>.<n>", token)
		}
		if seen[token] {
			t.Fatalf("token %q issued twice", token)
		}
		seen[token] = true
	}
	token := mustAssign(t, tk, "bob", 3)
	for _, current := range []uint64{3, 7} {
		if who, ok := tk.info(token, current); !ok || who != (Info{User: "bob", Revision: current}) {
			t.Fatalf("info at %d: %+v, %v; want bob at %d", current, who, ok, current)
		}
	}
	for _, bad := range []string{"", "nope", token + "x", token[:16], "." + token} {
		if who, ok := tk.info(bad, 3); ok {
			t.Errorf("info(%q) = %+v, want invalid", bad, who)
		}
	}
}

// TestSimpleTokenTTL: a token unused for its TTL is invalid; each use moves
// its deadline on by the TTL, so a sweep at the first deadline keeps it.
func TestSimpleTokenTTL(t *testing.T) {
	t.Run("expires unused", func(t *testing.T) {
		const ttl = 50 * time.Millisecond
		tk := newSimple(t, ttl)
		token := mustAssign(t, tk, "alice", 1)
		time.Sleep(3 * ttl)
		if who, ok := tk.info(token, 1); ok {
			t.Fatalf("info after 3×TTL unused: %+v, want invalid", who)
		}
	})
	t.Run("refreshed on use", func(t *testing.T) {
		const ttl = time.Hour
		tk := newSimple(t, ttl)
		token := mustAssign(t, tk, "alice", 1)
		// As if issued half a TTL ago: a use now gains half a TTL.
		st, _ := tk.table.Load(token)
		first := time.Now().Add(ttl / 2)
		st.deadline.Store(first.UnixNano())
		used := time.Now()
		if _, ok := tk.info(token, 1); !ok {
			t.Fatal("token invalid before its deadline")
		}
		if d := st.deadline.Load(); d < used.Add(ttl).UnixNano() {
			t.Fatalf("deadline %v after a use at %v, want at least a TTL later", time.Unix(0, d), used)
		}
		tk.expire(first.Add(time.Millisecond))
		if _, ok := tk.info(token, 1); !ok {
			t.Fatal("a token used since was swept at its first deadline")
		}
	})
}

// TestSimpleTokenEnds covers the ways tokens end besides their TTL: the
// sweep, a user's tokens ended, and every token ended.
func TestSimpleTokenEnds(t *testing.T) {
	const ttl = time.Hour
	tests := []struct {
		name  string
		end   func(tk *simpleTokens, issued time.Time)
		alive map[string]bool // by user
	}{
		{"sweep before the deadline", func(tk *simpleTokens, issued time.Time) { tk.expire(issued.Add(ttl / 2)) },
			map[string]bool{"alice": true, "bob": true}},
		{"sweep after the deadline", func(tk *simpleTokens, issued time.Time) { tk.expire(time.Now().Add(ttl + time.Second)) },
			map[string]bool{"alice": false, "bob": false}},
		{"invalidate alice", func(tk *simpleTokens, _ time.Time) { tk.invalidate("alice") },
			map[string]bool{"alice": false, "bob": true}},
		{"invalidate someone else", func(tk *simpleTokens, _ time.Time) { tk.invalidate("carol") },
			map[string]bool{"alice": true, "bob": true}},
		{"disable", func(tk *simpleTokens, _ time.Time) { tk.disable() },
			map[string]bool{"alice": false, "bob": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := newSimple(t, ttl)
			issued := time.Now()
			byUser := map[string][]string{}
			for _, user := range []string{"alice", "alice", "bob"} {
				byUser[user] = append(byUser[user], mustAssign(t, tk, user, 1))
			}
			tt.end(tk, issued)
			wantSize := 0
			for user, tokens := range byUser {
				for _, token := range tokens {
					if _, ok := tk.info(token, 1); ok != tt.alive[user] {
						t.Errorf("%s's token valid %v, want %v", user, ok, tt.alive[user])
					}
					if tt.alive[user] {
						wantSize++
					}
				}
			}
			if n := tk.table.Size(); n != wantSize {
				t.Errorf("%d tokens held, want %d", n, wantSize)
			}
		})
	}
}

// jwtKeys are PEM files of one key pair (or an HMAC secret, private only).
type jwtKeys struct{ pub, priv string }

func writePEM(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeKeys(t *testing.T, priv crypto.Signer) jwtKeys {
	t.Helper()
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return jwtKeys{pub: writePEM(t, "pub.pem", "PUBLIC KEY", pubDER), priv: writePEM(t, "priv.pem", "PRIVATE KEY", privDER)}
}

func rsaKeys(t *testing.T) jwtKeys {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return writeKeys(t, k)
}

func ecKeys(t *testing.T, curve elliptic.Curve) jwtKeys {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return writeKeys(t, k)
}

func edKeys(t *testing.T) jwtKeys {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return writeKeys(t, k)
}

func hmacKey(t *testing.T) jwtKeys {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("a shared secret of enough bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	return jwtKeys{priv: path}
}

func jwtSpec(method string, k jwtKeys, extra string) string {
	s := "jwt,sign-method=" + method
	if k.pub != "" {
		s += ",pub-key=" + k.pub
	}
	if k.priv != "" {
		s += ",priv-key=" + k.priv
	}
	return s + extra
}

func newJWTTokens(t *testing.T, spec string) tokens {
	t.Helper()
	tk, err := newTokens(spec, 0)
	if err != nil {
		t.Fatalf("newTokens(%q): %v", spec, err)
	}
	if _, ok := tk.(*jwtTokens); !ok {
		t.Fatalf("newTokens(%q) = %T, want JWTs", spec, tk)
	}
	return tk
}

// TestJWTRoundTrip issues and checks a token with each kind of key: it
// carries the user and the revision it was issued at (not the current
// one), and expires a TTL later.
func TestJWTRoundTrip(t *testing.T) {
	rsaK, ecK, edK, secret := rsaKeys(t), ecKeys(t, elliptic.P256()), edKeys(t), hmacKey(t)
	tests := []struct {
		method string
		keys   jwtKeys
	}{
		{"RS256", rsaK}, {"RS512", rsaK}, {"PS256", rsaK},
		{"ES256", ecK}, {"ES384", ecKeys(t, elliptic.P384())},
		{"EdDSA", edK},
		{"HS256", secret}, {"HS512", secret},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			tk := newJWTTokens(t, jwtSpec(tt.method, tt.keys, ",ttl=1m"))
			before := time.Now()
			token := mustAssign(t, tk, "alice", 5)
			if who, ok := tk.info(token, 99); !ok || who != (Info{User: "alice", Revision: 5}) {
				t.Fatalf("info: %+v, %v; want alice at revision 5", who, ok)
			}
			claims := jwt.MapClaims{}
			parsed, _, err := jwt.NewParser().ParseUnverified(token, claims)
			if err != nil {
				t.Fatal(err)
			}
			if parsed.Method.Alg() != tt.method {
				t.Errorf("alg %s, want %s", parsed.Method.Alg(), tt.method)
			}
			exp, err := claims.GetExpirationTime()
			if err != nil || exp == nil {
				t.Fatalf("exp: %v, %v", exp, err)
			}
			if d := exp.Sub(before); d < 59*time.Second || d > 61*time.Second {
				t.Errorf("expires %v after issue, want the 1m ttl", d)
			}
			if claims["username"] != "alice" || claims["revision"] != float64(5) {
				t.Errorf("claims %v", claims)
			}
		})
	}
}

// TestJWTRejects: a token not signed by the configured key and method, or
// expired, or missing a claim, names nobody.
func TestJWTRejects(t *testing.T) {
	keys := rsaKeys(t)
	tk := newJWTTokens(t, jwtSpec("RS256", keys, ""))
	privPEM, err := os.ReadFile(keys.priv)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwt.ParseRSAPrivateKeyFromPEM(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(keys.pub)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"username": "alice", "revision": 3, "exp": time.Now().Add(time.Minute).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	other := newJWTTokens(t, jwtSpec("RS256", rsaKeys(t), ""))
	otherToken := mustAssign(t, other, "alice", 3)
	good := sign(jwt.SigningMethodRS256, priv, valid())
	if who, ok := tk.info(good, 3); !ok || who.User != "alice" {
		t.Fatalf("a well-made token: %+v, %v", who, ok)
	}
	tests := []struct {
		name  string
		token string
	}{
		{"another key", otherToken},
		{"expired", sign(jwt.SigningMethodRS256, priv, with("exp", time.Now().Add(-time.Minute).Unix()))},
		{"not yet valid", sign(jwt.SigningMethodRS256, priv, with("nbf", time.Now().Add(time.Hour).Unix()))},
		{"HS256 with the public key as secret", sign(jwt.SigningMethodHS256, pubPEM, valid())},
		{"another RSA method", sign(jwt.SigningMethodRS512, priv, valid())},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid())},
		{"no username", sign(jwt.SigningMethodRS256, priv, with("username", nil))},
		{"empty username", sign(jwt.SigningMethodRS256, priv, with("username", ""))},
		{"username not a string", sign(jwt.SigningMethodRS256, priv, with("username", 7))},
		{"no revision", sign(jwt.SigningMethodRS256, priv, with("revision", nil))},
		{"revision not a number", sign(jwt.SigningMethodRS256, priv, with("revision", "3"))},
		{"tampered", good[:len(good)-4] + "AAAA"},
		{"garbage", "not.a.jwt"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if who, ok := tk.info(tt.token, 3); ok {
				t.Fatalf("info: %+v, want invalid", who)
			}
		})
	}
}

// TestJWTExpiresAfterTTL uses a real short TTL (JWT expiry has a
// resolution of one second).
func TestJWTExpiresAfterTTL(t *testing.T) {
	tk := newJWTTokens(t, jwtSpec("HS256", hmacKey(t), ",ttl=1s"))
	token := mustAssign(t, tk, "alice", 1)
	time.Sleep(3 * time.Second)
	if who, ok := tk.info(token, 1); ok {
		t.Fatalf("info after 3×ttl: %+v, want invalid", who)
	}
}

// TestJWTVerifyOnly: with a public key alone tokens are checked but none
// issued; the ending operations do nothing.
func TestJWTVerifyOnly(t *testing.T) {
	for _, tt := range []struct {
		method string
		keys   jwtKeys
	}{{"RS256", rsaKeys(t)}, {"ES256", ecKeys(t, elliptic.P256())}, {"EdDSA", edKeys(t)}} {
		t.Run(tt.method, func(t *testing.T) {
			full := newJWTTokens(t, jwtSpec(tt.method, tt.keys, ""))
			verify := newJWTTokens(t, jwtSpec(tt.method, jwtKeys{pub: tt.keys.pub}, ""))
			if token, err := verify.assign("alice", 1); !errors.Is(err, ErrVerifyOnly) {
				t.Fatalf("assign: %q, %v; want %v", token, err, ErrVerifyOnly)
			}
			token := mustAssign(t, full, "alice", 4)
			verify.invalidate("alice")
			verify.disable()
			verify.expire(time.Now().Add(time.Hour))
			if who, ok := verify.info(token, 9); !ok || who != (Info{User: "alice", Revision: 4}) {
				t.Fatalf("info: %+v, %v; want alice at 4", who, ok)
			}
		})
	}
}

// TestTokenSpecErrors: a bad --auth-token is ErrInvalidAuthOpts.
func TestTokenSpecErrors(t *testing.T) {
	rsaK, ecK := rsaKeys(t), ecKeys(t, elliptic.P256())
	other := rsaKeys(t)
	tests := []struct {
		name string
		spec string
	}{
		{"unknown kind", "paseto"},
		{"unknown option", jwtSpec("RS256", rsaK, ",color=blue")},
		{"option without value", "jwt,sign-method"},
		{"option without name", "jwt,=RS256"},
		{"option given twice", jwtSpec("RS256", rsaK, ",sign-method=RS256")},
		{"missing sign-method", "jwt,pub-key=" + rsaK.pub + ",priv-key=" + rsaK.priv},
		{"unknown sign-method", jwtSpec("XX256", rsaK, "")},
		{"no keys", "jwt,sign-method=RS256"},
		{"HMAC without secret", "jwt,sign-method=HS256"},
		{"HMAC with a public key only", jwtSpec("HS256", jwtKeys{pub: hmacKey(t).priv}, "")},
		{"mismatched keys", jwtSpec("RS256", jwtKeys{pub: other.pub, priv: rsaK.priv}, "")},
		{"key of another kind", jwtSpec("ES256", rsaK, "")},
		{"RSA method with an EC key", jwtSpec("RS256", ecK, "")},
		{"missing key file", jwtSpec("RS256", jwtKeys{priv: filepath.Join(t.TempDir(), "nope")}, "")},
		{"not PEM", jwtSpec("RS256", jwtKeys{priv: hmacKey(t).priv}, "")},
		{"bad ttl", jwtSpec("RS256", rsaK, ",ttl=soon")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk, err := newTokens(tt.spec, 0)
			if !errors.Is(err, ErrInvalidAuthOpts) {
				t.Fatalf("newTokens(%q) = %T, %v; want %v", tt.spec, tk, err, ErrInvalidAuthOpts)
			}
		})
	}
}
