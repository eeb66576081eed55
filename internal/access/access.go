// Package access guards the scheduler's HTTP endpoints: a bearer token for
// everything that changes state (starting, cancelling and retrying runs,
// pausing schedules, asynqmon's actions) and, when asked, for reads too;
// and refusal of cross-origin writes from browsers (net/http's
// CrossOriginProtection, which reads Sec-Fetch-Site and Origin), so that a
// web page elsewhere cannot make an operator's browser act, token or not.
//
// Browsers sign in once on the console's sign-in page: the server then
// starts a session (a random id kept in a SessionStore, Redis, for
// SessionTTL) and sets an HttpOnly, SameSite=Strict cookie holding its id
// (never the token), which the guard accepts like the bearer header until
// it expires or the browser signs out.
package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"
)

// CookieName is the console's session cookie.
const CookieName = "sluice_session"

// Config says what the guard asks for.
type Config struct {
	// Token is the secret that writes need (and reads, with
	// ReadsNeedToken). Empty: every write is refused.
	Token string
	// ReadsNeedToken makes pages, API reads and asynqmon's views need
	// the token too.
	ReadsNeedToken bool
	// Sessions keeps the console's sessions; nil: nobody can sign in (the
	// bearer header still works).
	Sessions SessionStore
}

// SessionStore keeps sign-in sessions (redisstore.Sessions).
type SessionStore interface {
	Create(ctx context.Context, binding string, ttl time.Duration) (string, error)
	Valid(ctx context.Context, id, binding string) (bool, error)
	Delete(ctx context.Context, id string) error
}

// SessionTTL is how long a console session lasts.
const SessionTTL = 12 * time.Hour

// Guard wraps handlers with the checks of a Config.
type Guard struct {
	cfg     Config
	binding string // what sessions are bound to: an HMAC of Token
	cop     *http.CrossOriginProtection
}

// New returns a guard.
func New(cfg Config) *Guard {
	g := &Guard{cfg: cfg, cop: http.NewCrossOriginProtection()}
	if cfg.Token != "" {
		m := hmac.New(sha256.New, []byte(cfg.Token))
		m.Write([]byte("sluice console session"))
		g.binding = hex.EncodeToString(m.Sum(nil))
	}
	g.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused: state-changing requests must come from this server's own pages or from a non-browser client", http.StatusForbidden)
	}))
	return g
}

// WritesEnabled tells whether a token is configured, without which no
// write is accepted.
func (g *Guard) WritesEnabled() bool { return g.cfg.Token != "" }

// ReadsNeedToken tells whether reads need the token.
func (g *Guard) ReadsNeedToken() bool { return g.cfg.ReadsNeedToken }

// SameOrigin refuses every cross-origin request that is not a safe method
// (GET, HEAD, OPTIONS), whatever it carries: wrap the whole server with it.
func (g *Guard) SameOrigin(h http.Handler) http.Handler { return g.cop.Handler(h) }

// Signed tells whether the request carries the token (a bearer header or
// the session cookie).
func (g *Guard) Signed(r *http.Request) bool {
	if g.cfg.Token == "" {
		return false
	}
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(auth)), []byte(g.cfg.Token)) == 1
	}
	if c, err := r.Cookie(CookieName); err == nil && g.cfg.Sessions != nil {
		// A store that does not answer signs nobody in.
		ok, err := g.cfg.Sessions.Valid(r.Context(), c.Value, g.binding)
		return err == nil && ok
	}
	return false
}

// CanRead tells whether the request may read.
func (g *Guard) CanRead(r *http.Request) bool { return !g.cfg.ReadsNeedToken || g.Signed(r) }

// Read lets a request through when reads are open or it carries the token.
func (g *Guard) Read(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.CanRead(r) {
			g.refuse(w, "reading needs the API token (Authorization: Bearer …, or sign in at /console/login)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Write lets a request through only with the token.
func (g *Guard) Write(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.cfg.Token == "" {
			http.Error(w, "writes are disabled: the scheduler has no API token (set SLUICE_API_TOKEN or -api-token-file)", http.StatusForbidden)
			return
		}
		if !g.Signed(r) {
			g.refuse(w, "this needs the API token (Authorization: Bearer …, or sign in at /console/login)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (g *Guard) refuse(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
	http.Error(w, msg, http.StatusUnauthorized)
}

// ErrWrongToken is SignIn's answer to a token that is not the configured
// one (or to any, when none is configured).
var ErrWrongToken = errors.New("not the API token")

// SignIn starts a session and sets its cookie when token is the configured
// one.
func (g *Guard) SignIn(w http.ResponseWriter, r *http.Request, token string) error {
	if g.cfg.Token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(g.cfg.Token)) != 1 {
		return ErrWrongToken
	}
	if g.cfg.Sessions == nil {
		return errors.New("this scheduler keeps no sessions: use the bearer header")
	}
	id, err := g.cfg.Sessions.Create(r.Context(), g.binding, SessionTTL)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(SessionTTL.Seconds()),
	})
	return nil
}

// SignOut ends the request's session, so its cookie signs nothing in
// any more (a copy kept elsewhere included), and clears the cookie.
func (g *Guard) SignOut(w http.ResponseWriter, r *http.Request) error {
	var err error
	if c, cerr := r.Cookie(CookieName); cerr == nil && g.cfg.Sessions != nil {
		err = g.cfg.Sessions.Delete(r.Context(), c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	return err
}
