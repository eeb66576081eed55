package config

import "regexp"

// userinfo matches the password of a URL's userinfo (scheme://user:pass@).
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@`)

// Redact replaces every password in URLs within s (redis://:pw@host,
// https://user:pw@host) with "xxxxx", for text that logs, pages and API
// answers show.
func Redact(s string) string { return userinfo.ReplaceAllString(s, "${1}xxxxx@") }
