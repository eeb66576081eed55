package segmentgen

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// device is one installed app. The context fields that do not change from
// event to event are rendered once, in two pieces around the one that does
// (context.campaign), keys in sorted order.
type device struct {
	android bool
	// head is `{"anonymousId":…,"channel":"mobile","context":{"app":{…}`
	// and tail `,"device":{…},"ip":…,"userAgent":…},`: the rest of the
	// context, closed.
	head, tail  string
	userID      string // "" for users who never logged in
	appVersion  string
	appBuild    string
	prevVersion string // what Application Updated updated from
	prevBuild   string
	zone        zone
	skewMs      int64 // device clock error
	person      person
}

var (
	iosModels = []struct {
		model, kind string
		w, h        int
	}{
		{"iPhone14,2", "iPhone", 390, 844}, {"iPhone14,5", "iPhone", 390, 844}, {"iPhone15,2", "iPhone", 393, 852},
		{"iPhone15,3", "iPhone", 430, 932}, {"iPhone16,1", "iPhone", 393, 852}, {"iPhone12,8", "iPhone", 375, 667},
		{"iPad13,18", "iPad", 820, 1180},
	}
	androidModels = []struct {
		manufacturer, model, codename, build string
		w, h                                 int
		density                              string
	}{
		{"Google", "Pixel 7", "panther", "TQ3A.230805.001", 1080, 2400, "2.625"},
		{"Google", "Pixel 8 Pro", "husky", "UD1A.230803.041", 1344, 2992, "3.0"},
		{"samsung", "SM-S911B", "dm1q", "UP1A.231005.007", 1080, 2340, "2.8125"},
		{"samsung", "SM-A546B", "a54x", "TP1A.220624.014", 1080, 2340, "2.625"},
		{"OnePlus", "CPH2449", "OP594DL1", "TP1A.220905.001", 1240, 2772, "3.5"},
		{"motorola", "moto g power (2022)", "tonga", "S3RQS32.20-42-10-6", 720, 1600, "1.75"},
	}
	iosVersions     = []string{"16.7.5", "17.2.1", "17.3", "17.3.1", "17.4"}
	androidVersions = []string{"12", "13", "14"}
	appVersions     = []struct{ version, build, prevVersion, prevBuild string }{
		{"3.4.1", "412", "3.4.0", "409"}, {"3.5.0", "420", "3.4.1", "412"}, {"3.5.1", "423", "3.5.0", "420"},
	}
	locales       = []string{"en-US", "en-US", "en-US", "es-US", "en-GB", "ja-JP", "hi-IN"}
	carriers      = []string{"T-Mobile", "Verizon", "AT&T", "", "NTT DOCOMO"}
	badTimestamps = []string{"2024-02-30T25:61:00Z", "not-a-timestamp", "", "1710000000", "2024/03/09 10:00:00"}
)

const tokenChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// newDevice draws one installed app. first is the first device of a
// source: it has every optional field (a user id, an advertising id, a
// push token), so the events plan puts on it carry every column.
func newDevice(r *rng, platform string, zones []zone, first bool) device {
	d := device{android: platform == "Android"}
	upper := !d.android
	advertisingID, anonymousID := uuid(r, upper), uuid(r, upper)
	// iOS sends identifierForVendor, a UUID; Android sends ANDROID_ID,
	// 64 bits in hex.
	id := uuid(r, upper)
	if d.android {
		id = string(appendHex(nil, r.next(), 16))
	}
	if first || r.chance(0.7) {
		d.userID = "user_" + strconv.FormatUint(r.next()%1_000_000, 10)
	}
	av := pick(r, appVersions)
	d.appVersion, d.appBuild, d.prevVersion, d.prevBuild = av.version, av.build, av.prevVersion, av.prevBuild
	locale := pick(r, locales)
	d.zone = pick(r, zones)
	carrier := pick(r, carriers)
	wifi := r.chance(0.6)
	// Most users decline ad tracking (iOS's ATT prompt, Android's opt-out),
	// and then the SDKs send no advertising id.
	adTracking := first || r.chance(0.3)
	push := first || r.chance(1.0/3)
	ip := strconv.Itoa(r.intn(200)+11) + "." + strconv.Itoa(r.intn(256)) + "." + strconv.Itoa(r.intn(256)) + "." + strconv.Itoa(r.intn(254)+1)
	if r.chance(0.1) {
		d.skewMs = r.between(-120_000, 120_000)
	}
	d.person = newPerson(r, d.zone)

	var manufacturer, model, name, osVersion, userAgent, density string
	var width, height int
	if d.android {
		m := pick(r, androidModels)
		manufacturer, model, name, width, height, density = m.manufacturer, m.model, m.codename, m.w, m.h, m.density
		osVersion = pick(r, androidVersions)
		userAgent = "Dalvik/2.1.0 (Linux; U; Android " + osVersion + "; " + m.model + " Build/" + m.build + ")"
	} else {
		m := pick(r, iosModels)
		manufacturer, model, width, height = "Apple", m.model, m.w, m.h
		osVersion = pick(r, iosVersions)
		// UIDevice.name is the owner's name for the device ("Jane’s iPhone",
		// with a typographic apostrophe) where the app may read it, and the
		// bare model otherwise.
		name = m.kind
		if r.chance(0.4) {
			name = d.person.first + "’s " + m.kind
		}
		// WKWebView's user agent; an iPad asks for desktop pages and
		// presents itself as a Mac.
		userAgent = "Mozilla/5.0 (iPhone; CPU iPhone OS " + underscores(osVersion) + " like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
		if m.kind == "iPad" {
			userAgent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
		}
	}

	var b []byte
	b = append(b, `{"anonymousId":`...)
	b = appendStr(b, anonymousID)
	b = append(b, `,"channel":"mobile","context":{"app":{"build":`...)
	b = appendStr(b, d.appBuild)
	b = append(b, `,"name":"Sluice Shop","namespace":"com.example.sluiceshop","version":`...)
	b = appendStr(b, d.appVersion)
	b = append(b, '}')
	d.head = string(b)

	b = append(b[:0], `,"device":{"adTrackingEnabled":`...)
	b = strconv.AppendBool(b, adTracking)
	if adTracking {
		b = append(b, `,"advertisingId":`...)
		b = appendStr(b, advertisingID)
	}
	b = append(b, `,"id":`...)
	b = appendStr(b, id)
	b = append(b, `,"manufacturer":`...)
	b = appendStr(b, manufacturer)
	b = append(b, `,"model":`...)
	b = appendStr(b, model)
	b = append(b, `,"name":`...)
	b = appendStr(b, name)
	if push {
		// APNs tokens are 32 bytes in hex; FCM registration tokens are an
		// instance id, ":APA91b" and a long base64url tail.
		b = append(b, `,"token":"`...)
		if d.android {
			b = appendToken(b, r, 11)
			b = append(b, ":APA91b"...)
			b = appendToken(b, r, 134)
		} else {
			b = appendHex(b, r.next(), 16)
			b = appendHex(b, r.next(), 16)
			b = appendHex(b, r.next(), 16)
			b = appendHex(b, r.next(), 16)
		}
		b = append(b, '"')
	}
	if d.android {
		b = append(b, `,"type":"android"}`...)
	} else {
		b = append(b, `,"type":"ios"}`...)
	}
	b = append(b, `,"ip":`...)
	b = appendStr(b, ip)
	if d.android {
		b = append(b, `,"library":{"name":"analytics-android","version":"4.11.3"},"locale":`...)
	} else {
		b = append(b, `,"library":{"name":"analytics-ios","version":"4.1.8"},"locale":`...)
	}
	b = appendStr(b, locale)
	b = append(b, `,"network":{"carrier":`...)
	b = appendStr(b, carrier)
	b = append(b, `,"cellular":`...)
	b = strconv.AppendBool(b, !wifi)
	b = append(b, `,"wifi":`...)
	b = strconv.AppendBool(b, wifi)
	b = append(b, `},"os":{"name":`...)
	if d.android {
		b = append(b, `"Android"`...)
	} else {
		b = append(b, `"iOS"`...)
	}
	b = append(b, `,"version":`...)
	b = appendStr(b, osVersion)
	b = append(b, `},"screen":{`...)
	if d.android {
		b = append(b, `"density":`...)
		b = append(b, density...)
		b = append(b, ',')
	}
	b = append(b, `"height":`...)
	b = strconv.AppendInt(b, int64(height), 10)
	b = append(b, `,"width":`...)
	b = strconv.AppendInt(b, int64(width), 10)
	b = append(b, `},"timezone":`...)
	b = appendStr(b, d.zone.name)
	b = append(b, `,"userAgent":`...)
	b = appendStr(b, userAgent)
	b = append(b, `},`...)
	d.tail = string(b)
	return d
}

// underscores writes an OS version as user agents do: 17.3.1 -> 17_3_1.
func underscores(v string) string {
	b := []byte(v)
	for i, c := range b {
		if c == '.' {
			b[i] = '_'
		}
	}
	return string(b)
}

func appendToken(b []byte, r *rng, n int) []byte {
	for i := 0; i < n; i += 10 {
		v := r.next()
		for j := i; j < min(n, i+10); j++ {
			b = append(b, tokenChars[v&63])
			v >>= 6
		}
	}
	return b
}

// uuid draws a version-4 UUID; iOS (NSUUID) prints upper case, Java lower.
func uuid(r *rng, upper bool) string { return string(appendUUID(nil, r, upper)) }

func appendUUID(b []byte, r *rng, upper bool) []byte {
	a, c := r.next(), r.next()
	a = a&^(0xf<<12) | 0x4<<12 // version 4
	c = c&^(0x3<<62) | 0x2<<62 // variant 10
	const lower, upperHex = "0123456789abcdef", "0123456789ABCDEF"
	digits := lower
	if upper {
		digits = upperHex
	}
	for i := range 16 {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		w := a
		if i >= 8 {
			w = c
		}
		v := byte(w >> (56 - 8*(i%8)))
		b = append(b, digits[v>>4], digits[v&0xf])
	}
	return b
}

func appendHex(b []byte, v uint64, n int) []byte {
	const digits = "0123456789abcdef"
	for i := n - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// appendCents writes an amount as JavaScript and Java print a double:
// 19.99, 19.9, and 20 with no fraction at all.
func appendCents(b []byte, cents int64) []byte {
	b = strconv.AppendInt(b, cents/100, 10)
	if f := cents % 100; f != 0 {
		b = append(b, '.', byte('0'+f/10))
		if f%10 != 0 {
			b = append(b, byte('0'+f%10))
		}
	}
	return b
}

// appendISO writes unix ms as an ISO 8601 UTC time with milliseconds, the
// format the SDKs use for every date.
func appendISO(b []byte, ms int64) []byte {
	return time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
}

// renderer appends one event as a JSON line. It writes JSON by hand into a
// reused buffer: encoding/json with maps would dominate the generator's time.
// One renderer serves one file at a time.
type renderer struct {
	g *generator
	// per event, drawn by begin
	fromBackground bool
	campaign       int // 1 + index into campaigns, 0 for none
}

func (rd *renderer) appendLine(b []byte, ev event, recv int64) []byte {
	start := len(b)
	g := rd.g
	d := &g.devices[ev.src][ev.device]
	r := newRNG(ev.seed)
	rd.begin(&r, ev.etype, ev.full)

	// timestamp = receivedAt - (sentAt - originalTimestamp), as Segment
	// computes it, so device clock skew cancels out.
	latency := min(r.between(40, 2000), recv-ev.ts)
	sentAt := recv - latency + d.skewMs
	original := ev.ts - latency + d.skewMs

	b = append(b, d.head...)
	if rd.campaign > 0 {
		b = rd.appendCampaign(b)
	}
	b = append(b, d.tail...)
	b = rd.appendProps(b, &r, d, ev.etype, ev.full)
	b = append(b, `"integrations":{},`...)
	if ev.kind != kindNoMessageID {
		b = append(b, `"messageId":"`...)
		b = appendUUID(b, &r, !d.android)
		b = append(b, `",`...)
	}
	b = append(b, `"originalTimestamp":"`...)
	b = time.UnixMilli(original).In(d.zone.loc).AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","receivedAt":"`...)
	b = appendISO(b, recv)
	b = append(b, `","sentAt":"`...)
	b = appendISO(b, sentAt)
	b = append(b, `","timestamp":`...)
	if ev.kind == kindBadTimestamp {
		b = appendStr(b, pick(&r, badTimestamps))
	} else {
		b = append(b, '"')
		ts := time.UnixMilli(ev.ts)
		switch ev.tsFmt {
		case tsMillisZ:
			b = ts.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		case tsSecondsZ:
			b = ts.UTC().AppendFormat(b, "2006-01-02T15:04:05Z07:00")
		case tsOffset:
			loc := d.zone.loc
			if _, off := ts.In(loc).Zone(); off == 0 {
				loc = g.zones[5].loc // Tokyo: the point is a non-zero offset
			}
			b = ts.In(loc).AppendFormat(b, "2006-01-02T15:04:05Z07:00")
		}
		b = append(b, '"')
	}
	switch ev.etype {
	case evIdentify:
		b = append(b, `,"traits":`...)
		b = append(b, d.person.traitsHead...)
		b = strconv.AppendInt(b, r.between(1, 300), 10)
		b = append(b, d.person.traitsTail...)
		b = append(b, `,"type":"identify"`...)
	case evScreen:
		b = append(b, `,"type":"screen"`...)
	default:
		b = append(b, `,"type":"track"`...)
	}
	if d.userID != "" {
		b = append(b, `,"userId":`...)
		b = appendStr(b, d.userID)
	}
	b = append(b, `,"version":2,"_metadata":{"bundled":["Segment.io"],"unbundled":[]}}`...)
	if ev.kind == kindNotJSON {
		// A line cut short, as a truncated upload leaves it; cut on a
		// character boundary so even the broken line is valid UTF-8.
		cut := start + (len(b)-start)*2/3
		for !utf8.RuneStart(b[cut]) {
			cut--
		}
		b = b[:cut]
	}
	return append(b, '\n')
}

// appendStr writes a JSON string. Generated values are plain text, but the
// escaping keeps the output valid whatever a later edit puts in the tables.
func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = appendHex(b, uint64(c), 2)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
