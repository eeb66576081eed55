package access

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"sluice/internal/redisstore"
	"sluice/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestWritesNeedTheTokenAndComeFromTheSameOrigin(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	g := New(Config{Token: "s3cret"})
	h := g.SameOrigin(g.Write(ok))
	for _, c := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"wrong token", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"token", map[string]string{"Authorization": "Bearer s3cret"}, http.StatusNoContent},
		{"token, foreign page in a browser", map[string]string{"Authorization": "Bearer s3cret", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"token, foreign origin", map[string]string{"Authorization": "Bearer s3cret", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"token, same origin", map[string]string{"Authorization": "Bearer s3cret", "Sec-Fetch-Site": "same-origin"}, http.StatusNoContent},
	} {
		r := httptest.NewRequest("POST", "http://sched:8080/api/v1/runs", strings.NewReader("x"))
		r.Header.Set("Content-Type", "text/plain")
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s: %d, want %d (%s)", c.name, w.Code, c.want, w.Body)
		}
	}

	// Without a token writes are off; reads are open unless asked.
	none := New(Config{})
	w := httptest.NewRecorder()
	none.Write(ok).ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "SLUICE_API_TOKEN") {
		t.Errorf("write without a configured token: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	none.Read(ok).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusNoContent {
		t.Errorf("open read: %d", w.Code)
	}
	closed := New(Config{Token: "s3cret", ReadsNeedToken: true})
	w = httptest.NewRecorder()
	closed.Read(ok).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("closed read without a token: %d", w.Code)
	}
}

// Signing in starts a session of its own (a new cookie each time, never
// the token), kept in Redis for 12 hours; signing out ends it, so the same
// cookie no longer authorises anything.
func TestSessionsExpireAndSignOutRevokes(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseURL(testenv.RedisDB(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	g := New(Config{Token: "s3cret", Sessions: redisstore.NewSessions(rdb)})
	signIn := func() *http.Cookie {
		t.Helper()
		w := httptest.NewRecorder()
		if err := g.SignIn(w, httptest.NewRequest("POST", "/", nil), "s3cret"); err != nil {
			t.Fatal(err)
		}
		return w.Result().Cookies()[0]
	}
	signed := func(c *http.Cookie) bool {
		r := httptest.NewRequest("POST", "/", nil)
		r.AddCookie(c)
		return g.Signed(r)
	}
	if err := g.SignIn(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), "wrong"); err != ErrWrongToken {
		t.Fatalf("a wrong token: %v", err)
	}
	a, b := signIn(), signIn()
	if a.Value == b.Value || strings.Contains(a.Value, "s3cret") || !a.HttpOnly || a.SameSite != http.SameSiteStrictMode || a.MaxAge != int(SessionTTL.Seconds()) {
		t.Errorf("cookies %+v and %+v", a, b)
	}
	if !signed(a) || !signed(b) {
		t.Fatal("a session cookie is not accepted")
	}
	keys, err := rdb.Keys(context.Background(), "sluice:session:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("session keys %v: %v", keys, err)
	}
	for _, k := range keys {
		if ttl := rdb.TTL(context.Background(), k).Val(); ttl <= 0 || ttl > SessionTTL {
			t.Errorf("session %s lives %s, want at most %s", k, ttl, SessionTTL)
		}
	}
	r := httptest.NewRequest("POST", "/console/logout", nil)
	r.AddCookie(a)
	w := httptest.NewRecorder()
	if err := g.SignOut(w, r); err != nil {
		t.Fatal(err)
	}
	if c := w.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Errorf("sign-out cookies %+v", c)
	}
	if signed(a) {
		t.Error("the signed-out cookie still signs in")
	}
	if !signed(b) {
		t.Error("signing out one browser ended another's session")
	}
	if signed(&http.Cookie{Name: CookieName, Value: strings.Repeat("0", 64)}) {
		t.Error("a made-up cookie signs in")
	}
	// A new token ends every session made for the old one.
	rotated := New(Config{Token: "n3w-s3cret", Sessions: redisstore.NewSessions(rdb)})
	r = httptest.NewRequest("POST", "/", nil)
	r.AddCookie(b)
	if rotated.Signed(r) {
		t.Error("a session outlived the token it was made for")
	}
}
