package access

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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

	// Signing in sets a cookie that is not the token and stands for it.
	w := httptest.NewRecorder()
	if g.SignIn(w, httptest.NewRequest("POST", "/", nil), "wrong") {
		t.Fatal("a wrong token signed in")
	}
	if !g.SignIn(w, httptest.NewRequest("POST", "/", nil), "s3cret") {
		t.Fatal("the token did not sign in")
	}
	cookie := w.Result().Cookies()[0]
	if strings.Contains(cookie.Value, "s3cret") || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie %+v", cookie)
	}
	r := httptest.NewRequest("POST", "/", nil)
	r.AddCookie(cookie)
	if !g.Signed(r) {
		t.Error("the session cookie is not accepted")
	}

	// Without a token writes are off; reads are open unless asked.
	none := New(Config{})
	w = httptest.NewRecorder()
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
