package config

import "regexp"

// Passwords in text: a URL's userinfo password (scheme://user:pass@) and
// the value of a query parameter named like a secret (password=,
// sentinel_password=, token=, secret=), as RedactURL treats one URL.
var (
	userinfo    = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@`)
	secretQuery = regexp.MustCompile(`(?i)([?&][A-Za-z_]*(?:password|secret|token)[A-Za-z_]*=)[^&\s"']+`)
)

// RedactText replaces every password in URLs within s (redis://:pw@host,
// https://user:pw@host, ?sentinel_password=pw) with "xxxxx", for text that
// logs, pages and API answers show (errors that quote a URL); RedactURL is
// for one URL.
func RedactText(s string) string {
	s = userinfo.ReplaceAllString(s, "${1}"+Redacted+"@")
	return secretQuery.ReplaceAllString(s, "${1}"+Redacted)
}
