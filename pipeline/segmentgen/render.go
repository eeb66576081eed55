package segmentgen

import (
	"strconv"
	"time"
)

// device is one installed app: the context fields that do not change from
// event to event, pre-rendered as strings.
type device struct {
	android       bool
	id            string
	advertisingID string
	anonymousID   string
	userID        string // "" for users who never logged in
	manufacturer  string
	model         string
	osVersion     string
	appVersion    string
	appBuild      string
	locale        string
	zone          zone
	carrier       string
	wifi          bool
	width, height int
	density       string
	adTracking    bool
	ip            string
	userAgent     string
	skewMs        int64 // device clock error
}

var (
	iosModels = []struct {
		model string
		w, h  int
	}{
		{"iPhone14,2", 390, 844}, {"iPhone14,5", 390, 844}, {"iPhone15,2", 393, 852},
		{"iPhone15,3", 430, 932}, {"iPhone16,1", 393, 852}, {"iPhone12,8", 375, 667}, {"iPad13,18", 820, 1180},
	}
	androidModels = []struct {
		manufacturer, model, build string
		w, h                       int
		density                    string
	}{
		{"Google", "Pixel 7", "TQ3A.230805.001", 1080, 2400, "2.625"},
		{"Google", "Pixel 8 Pro", "UD1A.230803.041", 1344, 2992, "3.0"},
		{"samsung", "SM-S911B", "UP1A.231005.007", 1080, 2340, "2.8125"},
		{"samsung", "SM-A546B", "TP1A.220624.014", 1080, 2340, "2.625"},
		{"OnePlus", "CPH2449", "TP1A.220905.001", 1240, 2772, "3.5"},
		{"motorola", "moto g power (2022)", "S3RQS32.20-42-10-6", 720, 1600, "1.75"},
	}
	iosVersions     = []string{"16.7.5", "17.2.1", "17.3", "17.3.1", "17.4"}
	androidVersions = []string{"12", "13", "14"}
	appVersions     = []struct{ version, build string }{{"3.4.1", "412"}, {"3.5.0", "420"}, {"3.5.1", "423"}}
	locales         = []string{"en-US", "en-US", "en-US", "es-US", "en-GB", "ja-JP", "hi-IN"}
	carriers        = []string{"T-Mobile", "Verizon", "AT&T", "", "NTT DOCOMO"}
	screens         = []string{"Home", "Search", "Product Detail", "Cart", "Checkout", "Settings", "Order History"}
	categories      = []string{"Shoes", "Outerwear", "Accessories", "Bags"}
	buttons         = []string{"Add to Cart", "Buy Now", "Share", "Favorite", "Sign In"}
	plans           = []string{"free", "plus", "pro"}
	badTimestamps   = []string{"2024-02-30T25:61:00Z", "not-a-timestamp", "", "1710000000", "2024/03/09 10:00:00"}
)

func newDevice(r *rng, platform string, zones []zone) device {
	d := device{android: platform == "Android"}
	d.id = uuid(r, !d.android)
	d.advertisingID = uuid(r, !d.android)
	d.anonymousID = uuid(r, !d.android)
	if r.chance(0.7) {
		d.userID = "user_" + strconv.FormatUint(r.next()%1_000_000, 10)
	}
	av := pick(r, appVersions)
	d.appVersion, d.appBuild = av.version, av.build
	d.locale = pick(r, locales)
	d.zone = pick(r, zones)
	d.carrier = pick(r, carriers)
	d.wifi = r.chance(0.6)
	d.adTracking = r.chance(0.3)
	d.ip = strconv.Itoa(r.intn(200)+11) + "." + strconv.Itoa(r.intn(256)) + "." + strconv.Itoa(r.intn(256)) + "." + strconv.Itoa(r.intn(254)+1)
	if r.chance(0.1) {
		d.skewMs = r.between(-120_000, 120_000)
	}
	if d.android {
		m := pick(r, androidModels)
		d.manufacturer, d.model, d.width, d.height, d.density = m.manufacturer, m.model, m.w, m.h, m.density
		d.osVersion = pick(r, androidVersions)
		d.userAgent = "Dalvik/2.1.0 (Linux; U; Android " + d.osVersion + "; " + m.model + " Build/" + m.build + ")"
	} else {
		m := pick(r, iosModels)
		d.manufacturer, d.model, d.width, d.height = "Apple", m.model, m.w, m.h
		d.osVersion = pick(r, iosVersions)
	}
	return d
}

// uuid draws a version-4 UUID; iOS (NSUUID) prints upper case, Java lower.
func uuid(r *rng, upper bool) string {
	a, b := r.next(), r.next()
	a = a&^(0xf<<12) | 0x4<<12 // version 4
	b = b&^(0x3<<62) | 0x2<<62 // variant 10
	var buf [36]byte
	const lower, upperHex = "0123456789abcdef", "0123456789ABCDEF"
	digits := lower
	if upper {
		digits = upperHex
	}
	x := [16]byte{}
	for i := range 8 {
		x[i] = byte(a >> (56 - 8*i))
		x[8+i] = byte(b >> (56 - 8*i))
	}
	j := 0
	for i, v := range x {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = digits[v>>4], digits[v&0xf]
		j += 2
	}
	return string(buf[:])
}

func appendHex(b []byte, v uint64, n int) []byte {
	const digits = "0123456789abcdef"
	for i := n - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// renderer appends one event as a JSON line. It writes JSON by hand into a
// reused buffer: encoding/json with maps would dominate the generator's time.
type renderer struct {
	g *generator
}

func (rd *renderer) appendLine(b []byte, ev event, recv int64) []byte {
	start := len(b)
	g := rd.g
	d := &g.devices[ev.src][ev.device]
	r := newRNG(ev.seed)

	typ := "track"
	switch u := r.float(); {
	case u < 0.45:
		typ = "screen"
	case u >= 0.9:
		typ = "identify"
	}
	// timestamp = receivedAt - (sentAt - originalTimestamp), as Segment
	// computes it, so device clock skew cancels out.
	latency := min(r.between(40, 2000), recv-ev.ts)
	sentAt := recv - latency + d.skewMs
	original := ev.ts - latency + d.skewMs
	messageID := uuid(&r, !d.android)

	b = append(b, `{"anonymousId":`...)
	b = appendStr(b, d.anonymousID)
	b = append(b, `,"channel":"mobile","context":{"app":{"build":`...)
	b = appendStr(b, d.appBuild)
	b = append(b, `,"name":"Sluice Shop","namespace":"com.example.sluiceshop","version":`...)
	b = appendStr(b, d.appVersion)
	b = append(b, `},"device":{"adTrackingEnabled":`...)
	b = strconv.AppendBool(b, d.adTracking)
	b = append(b, `,"advertisingId":`...)
	b = appendStr(b, d.advertisingID)
	b = append(b, `,"id":`...)
	b = appendStr(b, d.id)
	b = append(b, `,"manufacturer":`...)
	b = appendStr(b, d.manufacturer)
	b = append(b, `,"model":`...)
	b = appendStr(b, d.model)
	if d.android {
		b = append(b, `,"type":"android"},"ip":`...)
	} else {
		b = append(b, `,"type":"ios"},"ip":`...)
	}
	b = appendStr(b, d.ip)
	if d.android {
		b = append(b, `,"library":{"name":"analytics-android","version":"4.11.3"},"locale":`...)
	} else {
		b = append(b, `,"library":{"name":"analytics-ios","version":"4.1.8"},"locale":`...)
	}
	b = appendStr(b, d.locale)
	b = append(b, `,"network":{"bluetooth":false,"carrier":`...)
	b = appendStr(b, d.carrier)
	b = append(b, `,"cellular":`...)
	b = strconv.AppendBool(b, !d.wifi)
	b = append(b, `,"wifi":`...)
	b = strconv.AppendBool(b, d.wifi)
	b = append(b, `},"os":{"name":`...)
	if d.android {
		b = append(b, `"Android"`...)
	} else {
		b = append(b, `"iOS"`...)
	}
	b = append(b, `,"version":`...)
	b = appendStr(b, d.osVersion)
	b = append(b, `},"screen":{`...)
	if d.android {
		b = append(b, `"density":`...)
		b = append(b, d.density...)
		b = append(b, ',')
	}
	b = append(b, `"height":`...)
	b = strconv.AppendInt(b, int64(d.height), 10)
	b = append(b, `,"width":`...)
	b = strconv.AppendInt(b, int64(d.width), 10)
	b = append(b, `},"timezone":`...)
	b = appendStr(b, d.zone.name)
	b = append(b, `,"traits":{"anonymousId":`...)
	b = appendStr(b, d.anonymousID)
	if d.userID != "" {
		b = append(b, `,"userId":`...)
		b = appendStr(b, d.userID)
	}
	b = append(b, '}')
	if d.android {
		b = append(b, `,"userAgent":`...)
		b = appendStr(b, d.userAgent)
	}
	b = append(b, `},`...)
	switch typ {
	case "track":
		b = rd.appendTrack(b, &r)
	case "screen":
		name := pick(&r, screens)
		b = append(b, `"name":`...)
		b = appendStr(b, name)
		b = append(b, `,"properties":{"name":`...)
		b = appendStr(b, name)
		b = append(b, `},`...)
	}
	b = append(b, `"integrations":{},`...)
	if ev.kind != kindNoMessageID {
		b = append(b, `"messageId":`...)
		b = appendStr(b, messageID)
		b = append(b, ',')
	}
	b = append(b, `"originalTimestamp":"`...)
	b = time.UnixMilli(original).In(d.zone.loc).AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","receivedAt":"`...)
	b = time.UnixMilli(recv).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","sentAt":"`...)
	b = time.UnixMilli(sentAt).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
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
	if typ == "identify" {
		b = append(b, `,"traits":{"logins":`...)
		b = strconv.AppendInt(b, r.between(1, 300), 10)
		b = append(b, `,"plan":`...)
		b = appendStr(b, pick(&r, plans))
		b = append(b, '}')
	}
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, '"')
	if d.userID != "" {
		b = append(b, `,"userId":`...)
		b = appendStr(b, d.userID)
	}
	b = append(b, `,"version":2,"_metadata":{"bundled":["Segment.io"],"unbundled":[]}}`...)
	if ev.kind == kindNotJSON {
		// A line cut short, as a truncated upload leaves it.
		b = b[:start+(len(b)-start)*2/3]
	}
	return append(b, '\n')
}

func (rd *renderer) appendTrack(b []byte, r *rng) []byte {
	productID := func() string { return "prod_" + strconv.Itoa(r.intn(500)+1) }
	// Whole prices are written without a fraction, as JavaScript and
	// Java's JSON writers do: the crawler has to widen int to double.
	price := func(b []byte) []byte {
		cents := r.between(199, 19999)
		if r.chance(0.2) {
			cents -= cents % 100
		}
		return strconv.AppendFloat(b, float64(cents)/100, 'f', -1, 64)
	}
	switch u := r.intn(10); {
	case u < 2:
		b = append(b, `"event":"Application Opened","properties":{"build":"`...)
		b = append(b, `423","from_background":`...)
		b = strconv.AppendBool(b, r.chance(0.7))
		b = append(b, `,"version":"3.5.1"},`...)
	case u < 6:
		b = append(b, `"event":"Product Viewed","properties":{"category":`...)
		b = appendStr(b, pick(r, categories))
		b = append(b, `,"currency":"USD","price":`...)
		b = price(b)
		b = append(b, `,"product_id":`...)
		b = appendStr(b, productID())
		b = append(b, `},`...)
	case u < 8:
		b = append(b, `"event":"Button Tapped","properties":{"button_name":`...)
		b = appendStr(b, pick(r, buttons))
		b = append(b, `,"screen_name":`...)
		b = appendStr(b, pick(r, screens))
		b = append(b, `},`...)
	default:
		b = append(b, `"event":"Order Completed","properties":{"currency":"USD","order_id":"`...)
		b = appendHex(b, r.next(), 10)
		b = append(b, `","products":[`...)
		n := r.intn(3) + 1
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"price":`...)
			b = price(b)
			b = append(b, `,"product_id":`...)
			b = appendStr(b, productID())
			b = append(b, `,"quantity":`...)
			b = strconv.AppendInt(b, r.between(1, 3), 10)
			b = append(b, '}')
		}
		b = append(b, `],"revenue":`...)
		b = price(b)
		b = append(b, `},`...)
	}
	return b
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
