package mapper

// The lexical pieces of the flattener: finding the ends of strings and
// numbers, fastjson's whitespace and literals, unescaping strings as
// fastjson does, and the JSON number grammar fastjson left unchecked.

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// skipWS skips fastjson's whitespace: space, tab, CR, LF.
func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd finds the closing quote of a string whose contents start at
// i. esc tells whether the contents hold a backslash. It looks at eight
// bytes at a time for a quote or a backslash.
func stringEnd(b []byte, i int) (end int, esc, ok bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	k := i
	for {
		for k+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[k:])
			q, s := x^(ones*'"'), x^(ones*'\\')
			// The lowest set high bit marks the first zero byte exactly.
			if m := ((q-ones)&^q | (s-ones)&^s) & highs; m != 0 {
				k += bits.TrailingZeros64(m) >> 3
				break
			}
			k += 8
		}
		for k < len(b) && b[k] != '"' && b[k] != '\\' {
			k++
		}
		if k >= len(b) {
			return 0, false, false
		}
		if b[k] == '"' {
			return k, esc, true
		}
		esc = true
		k += 2
	}
}

// numberEnd finds the end of a number as fastjson's parseRawNumber does.
func numberEnd(b []byte, i int) (int, bool) {
	for k := i; k < len(b); k++ {
		c := b[k]
		if c >= '0' && c <= '9' || c == '.' || c == '-' || c == 'e' || c == 'E' || c == '+' {
			continue
		}
		if k == i || k == i+1 && (b[i] == '-' || b[i] == '+') {
			if len(b)-k >= 3 && (equalFoldASCII(b[k:k+3], "inf") || equalFoldASCII(b[k:k+3], "nan")) {
				return k + 3, true
			}
			return k, false
		}
		return k, true
	}
	return len(b), true
}

func hasLiteral(b []byte, lit string) bool {
	return len(b) >= len(lit) && string(b[:len(lit)]) == lit
}

// equalFoldASCII compares b with the lower-case ASCII word w, ignoring
// case. (fastjson uses strings.EqualFold, which for a three-byte b and an
// ASCII w can only match ASCII letters.)
func equalFoldASCII(b []byte, w string) bool {
	if len(b) != len(w) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// appendUnescaped appends s with its escapes resolved exactly as
// fastjson's unescapeStringBestEffort does.
func appendUnescaped(dst, s []byte) []byte {
	n := bytes.IndexByte(s, '\\')
	if n < 0 {
		return append(dst, s...)
	}
	dst = append(dst, s[:n]...)
	s = s[n+1:]
	for len(s) > 0 {
		ch := s[0]
		s = s[1:]
		switch ch {
		case '"':
			dst = append(dst, '"')
		case '\\':
			dst = append(dst, '\\')
		case '/':
			dst = append(dst, '/')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if len(s) < 4 {
				dst = append(dst, `\u`...)
				break
			}
			xs := s[:4]
			x, ok := hex4(xs)
			if !ok {
				dst = append(dst, `\u`...)
				break
			}
			s = s[4:]
			if !utf16.IsSurrogate(rune(x)) {
				dst = utf8.AppendRune(dst, rune(x))
				break
			}
			if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
				dst = append(dst, `\u`...)
				dst = append(dst, xs...)
				break
			}
			x1, ok := hex4(s[2:6])
			if !ok {
				dst = append(dst, `\u`...)
				dst = append(dst, xs...)
				break
			}
			dst = utf8.AppendRune(dst, utf16.DecodeRune(rune(x), rune(x1)))
			s = s[6:]
		default:
			dst = append(dst, '\\', ch)
		}
		n = bytes.IndexByte(s, '\\')
		if n < 0 {
			dst = append(dst, s...)
			break
		}
		dst = append(dst, s[:n]...)
		s = s[n+1:]
	}
	return dst
}

// hex4 reads four hexadecimal digits (strconv.ParseUint(s, 16, 16)).
func hex4(s []byte) (uint16, bool) {
	var x uint16
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		x = x<<4 | uint16(c)
	}
	return x, true
}

// validNumber checks the JSON number grammar, which fastjson does not
// enforce (it would accept "1.2.3" or "nan").
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
