package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/puzpuzpuz/xsync/v3"
)

// DefaultTokenTTL is how long a simple token lives unused (etcd's
// --auth-token-ttl default).
const DefaultTokenTTL = 300 * time.Second

// defaultJWTTTL is a JWT's lifetime unless its options name one (etcd's).
const defaultJWTTTL = 5 * time.Minute

// tokens issue and check the tokens of Authenticate. assign, invalidate,
// disable and expire run on the auth actor; info on any goroutine.
type tokens interface {
	// assign issues a token for user, checked at auth revision rev.
	assign(user string, rev uint64) (string, error)
	// info returns who a token names; current is the published auth
	// revision.
	info(token string, current uint64) (Info, bool)
	// invalidate ends the tokens of a deleted user or a changed password.
	invalidate(user string)
	// disable ends every token (auth turned off).
	disable()
	// expire ends the tokens unused for their TTL.
	expire(now time.Time)
}

// newTokens builds the tokens etcd's --auth-token names: "simple" (the
// default), or "jwt,sign-method=…,pub-key=…,priv-key=…,ttl=…".
func newTokens(spec string, ttl time.Duration) (tokens, error) {
	kind, opts, err := splitTokenSpec(spec)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "", "simple":
		if ttl <= 0 {
			ttl = DefaultTokenTTL
		}
		return &simpleTokens{ttl: ttl, table: xsync.NewMapOf[string, *simpleToken]()}, nil
	case "jwt":
		return newJWT(opts)
	default:
		return nil, fmt.Errorf("%w: unknown token type %q", ErrInvalidAuthOpts, kind)
	}
}

// splitTokenSpec splits "kind,key=value,…".
func splitTokenSpec(spec string) (string, map[string]string, error) {
	parts := strings.Split(spec, ",")
	opts := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return "", nil, fmt.Errorf("%w: %q", ErrInvalidAuthOpts, p)
		}
		if _, dup := opts[k]; dup {
			return "", nil, fmt.Errorf("%w: %q given twice", ErrInvalidAuthOpts, k)
		}
		opts[k] = v
	}
	return parts[0], opts, nil
}

// simpleTokens are etcd's simple tokens: random, held in memory only, and
// alive while used within their TTL. The auth actor is the single writer
// of the table; a token's deadline is moved on by whoever uses it.
type simpleTokens struct {
	ttl   time.Duration
	table *xsync.MapOf[string, *simpleToken]
	next  uint64 // the actor's counter that makes each token unique
}

type simpleToken struct {
	user     string
	deadline atomic.Int64 // unix nanoseconds
}

// tokenLetters and tokenLength are the random part of a simple token,
// as etcd's.
const (
	tokenLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	tokenLength  = 16
)

func (t *simpleTokens) assign(user string, _ uint64) (string, error) {
	var b [tokenLength]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = tokenLetters[int(b[i])%len(tokenLetters)]
	}
	t.next++
	token := string(b[:]) + "." + strconv.FormatUint(t.next, 10)
	st := &simpleToken{user: user}
	st.deadline.Store(time.Now().Add(t.ttl).UnixNano())
	t.table.Store(token, st)
	return token, nil
}

// info checks a token at the current auth revision, as etcd's simple
// tokens are: a change since does not end them, a deleted user or a
// changed password does (invalidate).
func (t *simpleTokens) info(token string, current uint64) (Info, bool) {
	st, ok := t.table.Load(token)
	if !ok {
		return Info{}, false
	}
	now := time.Now().UnixNano()
	deadline := st.deadline.Load()
	if now > deadline {
		return Info{}, false
	}
	// Moved on only when it gained a step: every request of a busy client
	// storing into one shared cache line would cost more than the check.
	// etcd's own sweep looks once a second.
	if next := now + int64(t.ttl); next-deadline >= int64(min(t.ttl/16, time.Second)) {
		st.deadline.Store(next)
	}
	return Info{User: st.user, Revision: current}, true
}

func (t *simpleTokens) invalidate(user string) {
	t.table.Range(func(token string, st *simpleToken) bool {
		if st.user == user {
			t.table.Delete(token)
		}
		return true
	})
}

func (t *simpleTokens) disable() { t.table.Clear() }

func (t *simpleTokens) expire(now time.Time) {
	t.table.Range(func(token string, st *simpleToken) bool {
		if now.UnixNano() > st.deadline.Load() {
			t.table.Delete(token)
		}
		return true
	})
}

// jwtTokens are etcd's JWTs: signed claims of the user name, the auth
// revision they were issued at and an expiry. Nothing is held: any auth
// change since issue ends one (its revision is old), and a user deleted
// or a password changed is such a change.
type jwtTokens struct {
	method jwt.SigningMethod
	key    any // a private key, an HMAC secret, or only a public key
	ttl    time.Duration
}

func newJWT(opts map[string]string) (*jwtTokens, error) {
	for k := range opts {
		switch k {
		case "sign-method", "pub-key", "priv-key", "ttl":
		default:
			return nil, fmt.Errorf("%w: unknown option %q", ErrInvalidAuthOpts, k)
		}
	}
	t := &jwtTokens{ttl: defaultJWTTTL, method: jwt.GetSigningMethod(opts["sign-method"])}
	if t.method == nil {
		return nil, fmt.Errorf("%w: sign-method %q", ErrInvalidAuthOpts, opts["sign-method"])
	}
	if s := opts["ttl"]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%w: ttl: %v", ErrInvalidAuthOpts, err)
		}
		t.ttl = d
	}
	var pub, priv []byte
	for name, to := range map[string]*[]byte{"pub-key": &pub, "priv-key": &priv} {
		if file := opts[name]; file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrInvalidAuthOpts, name, err)
			}
			*to = b
		}
	}
	key, err := jwtKey(t.method, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAuthOpts, err)
	}
	t.key = key
	return t, nil
}

// jwtKey parses the keys for a signing method: an HMAC secret is the
// private key file's bytes; an asymmetric method takes a PEM private key,
// a public one (verify only), or both if they match.
func jwtKey(method jwt.SigningMethod, pubPEM, privPEM []byte) (any, error) {
	if _, ok := method.(*jwt.SigningMethodHMAC); ok {
		if len(privPEM) == 0 {
			return nil, errors.New("missing key data")
		}
		return privPEM, nil
	}
	var parsePriv func([]byte) (crypto.PrivateKey, error)
	var parsePub func([]byte) (crypto.PublicKey, error)
	switch method.(type) {
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		parsePriv = func(b []byte) (crypto.PrivateKey, error) { return jwt.ParseRSAPrivateKeyFromPEM(b) }
		parsePub = func(b []byte) (crypto.PublicKey, error) { return jwt.ParseRSAPublicKeyFromPEM(b) }
	case *jwt.SigningMethodECDSA:
		parsePriv = func(b []byte) (crypto.PrivateKey, error) { return jwt.ParseECPrivateKeyFromPEM(b) }
		parsePub = func(b []byte) (crypto.PublicKey, error) { return jwt.ParseECPublicKeyFromPEM(b) }
	case *jwt.SigningMethodEd25519:
		parsePriv = jwt.ParseEdPrivateKeyFromPEM
		parsePub = jwt.ParseEdPublicKeyFromPEM
	default:
		return nil, fmt.Errorf("unsupported signing method %s", method.Alg())
	}
	var priv crypto.PrivateKey
	var pub crypto.PublicKey
	var err error
	if len(privPEM) > 0 {
		if priv, err = parsePriv(privPEM); err != nil {
			return nil, err
		}
	}
	if len(pubPEM) > 0 {
		if pub, err = parsePub(pubPEM); err != nil {
			return nil, err
		}
	}
	switch {
	case priv == nil && pub == nil:
		return nil, errors.New("missing key data")
	case priv == nil:
		return pub, nil
	case pub != nil && !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(priv.(crypto.Signer).Public()):
		return nil, errors.New("public and private keys don't match")
	}
	return priv, nil
}

func (t *jwtTokens) assign(user string, rev uint64) (string, error) {
	if !isPrivate(t.key) {
		return "", ErrVerifyOnly
	}
	tok := jwt.NewWithClaims(t.method, jwt.MapClaims{
		"username": user,
		"revision": rev,
		"exp":      time.Now().Add(t.ttl).Unix(),
	})
	return tok.SignedString(t.key)
}

// isPrivate reports whether a key can sign.
func isPrivate(key any) bool {
	switch key.(type) {
	case []byte, *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return true
	}
	return false
}

// verifyKey is the key that checks signatures.
func (t *jwtTokens) verifyKey() any {
	if s, ok := t.key.(crypto.Signer); ok {
		return s.Public()
	}
	return t.key
}

func (t *jwtTokens) info(token string, _ uint64) (Info, bool) {
	parsed, err := jwt.Parse(token, func(tok *jwt.Token) (any, error) {
		if tok.Method.Alg() != t.method.Alg() {
			return nil, errors.New("unexpected signing method")
		}
		return t.verifyKey(), nil
	}, jwt.WithValidMethods([]string{t.method.Alg()}))
	if err != nil || !parsed.Valid {
		return Info{}, false
	}
	claims, ok := parsed.Claims.(jwt.MapClaims)
	if !ok {
		return Info{}, false
	}
	name, ok := claims["username"].(string)
	rev, ok2 := claims["revision"].(float64)
	if !ok || !ok2 || name == "" {
		return Info{}, false
	}
	return Info{User: name, Revision: uint64(rev)}, true
}

func (t *jwtTokens) invalidate(string) {}
func (t *jwtTokens) disable()          {}
func (t *jwtTokens) expire(time.Time)  {}
