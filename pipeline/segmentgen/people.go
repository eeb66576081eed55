package segmentgen

import "strconv"

// person is the user behind a device: what identify sends as traits and
// what Order Completed ships to. Its JSON is rendered once per device, as
// the SDKs persist traits rather than rebuild them per event.
type person struct {
	first string
	// traitsHead is `{"address":{…},…,"lastName":…,"logins":` and
	// traitsTail `,"plan":…}`: logins is the one trait that changes from
	// identify to identify. The app sends firstName and lastName but no
	// full name, and no phone number.
	traitsHead, traitsTail string
	shipTo                 string // the same address as a properties.shipping_address object
}

type personName struct{ display, ascii string }

// The non-ASCII names are deliberate: the output must stay valid UTF-8
// through every writer, and iOS device names repeat them.
var (
	firstNames = []personName{
		{"Jane", "jane"}, {"Michael", "michael"}, {"Priya", "priya"}, {"José", "jose"}, {"Emily", "emily"},
		{"Wei", "wei"}, {"Olivia", "olivia"}, {"Daniel", "daniel"}, {"Zoë", "zoe"}, {"Hiroshi", "hiroshi"},
		{"Fatima", "fatima"}, {"Liam", "liam"}, {"Renée", "renee"}, {"Carlos", "carlos"}, {"Aisha", "aisha"},
		{"Noah", "noah"}, {"Sofia", "sofia"}, {"Arjun", "arjun"}, {"Chloe", "chloe"}, {"Mateo", "mateo"},
	}
	lastNames = []personName{
		{"Smith", "smith"}, {"Garcia", "garcia"}, {"Patel", "patel"}, {"Nguyen", "nguyen"}, {"Johnson", "johnson"},
		{"Kim", "kim"}, {"Müller", "mueller"}, {"Brown", "brown"}, {"Tanaka", "tanaka"}, {"O'Brien", "obrien"},
		{"Rossi", "rossi"}, {"Chen", "chen"}, {"Williams", "williams"}, {"Sharma", "sharma"}, {"López", "lopez"},
	}
	emailDomains = []string{"gmail.com", "gmail.com", "icloud.com", "yahoo.com", "outlook.com", "hotmail.com"}
	plans        = []string{"free", "free", "plus", "pro"}
)

// place is a city in the country of a device's time zone, so addresses and
// zones agree.
type place struct {
	city, state, postal, country string
	streets                      []string
}

var (
	usStreets = []string{"Market St", "Main St", "Oak Ave", "2nd St", "Broadway", "Elm St", "Park Ave", "Maple Dr"}
	placesBy  = map[string][]place{
		"America/Los_Angeles": {
			{"San Francisco", "CA", "941", "US", usStreets}, {"Los Angeles", "CA", "900", "US", usStreets},
			{"Seattle", "WA", "981", "US", usStreets}, {"Portland", "OR", "972", "US", usStreets}, {"San Diego", "CA", "921", "US", usStreets},
		},
		"America/New_York": {
			{"New York", "NY", "100", "US", usStreets}, {"Boston", "MA", "021", "US", usStreets}, {"Miami", "FL", "331", "US", usStreets},
		},
		"America/Chicago": {
			{"Chicago", "IL", "606", "US", usStreets}, {"Austin", "TX", "787", "US", usStreets}, {"Minneapolis", "MN", "554", "US", usStreets},
		},
		"Asia/Tokyo": {
			{"Shibuya", "Tokyo", "150-00", "JP", []string{"Jingumae", "Dogenzaka", "Ebisu"}},
			{"Osaka", "Osaka", "530-00", "JP", []string{"Umeda", "Sonezaki"}},
		},
		"Europe/London": {
			{"London", "England", "SW1A ", "GB", []string{"Baker Street", "Oxford Street", "King's Road"}},
			{"Manchester", "England", "M1 ", "GB", []string{"Deansgate", "Oldham Street"}},
		},
		"Asia/Kolkata": {
			{"Mumbai", "MH", "4000", "IN", []string{"Linking Road", "Marine Drive"}},
			{"Bengaluru", "KA", "5600", "IN", []string{"MG Road", "Brigade Road"}},
		},
	}
)

func newPerson(r *rng, z zone) person {
	fn, ln := pick(r, firstNames), pick(r, lastNames)
	pl := pick(r, placesBy[z.name])
	street := strconv.Itoa(r.intn(2400)+1) + " " + pick(r, pl.streets)
	postal := pl.postal + strconv.Itoa(r.intn(90)+10)
	if pl.country == "GB" {
		const letters = "ABDEFGHJLNPQRSTUWXYZ" // the ones inward codes use
		postal = pl.postal + strconv.Itoa(r.intn(10)) + string(letters[r.intn(20)]) + string(letters[r.intn(20)])
	}
	email := fn.ascii + "." + ln.ascii + strconv.Itoa(r.intn(100)) + "@" + pick(r, emailDomains)
	// Accounts created in the two years up to March 2024, the default dates.
	created := int64(1646092800000) + r.between(0, 730*dayMs)

	addr := func(b []byte, postalKey string) []byte {
		b = append(b, `{"city":`...)
		b = appendStr(b, pl.city)
		b = append(b, `,"country":`...)
		b = appendStr(b, pl.country)
		b = append(b, `,"`...)
		b = append(b, postalKey...)
		b = append(b, `":`...)
		b = appendStr(b, postal)
		b = append(b, `,"state":`...)
		b = appendStr(b, pl.state)
		b = append(b, `,"street":`...)
		b = appendStr(b, street)
		return append(b, '}')
	}
	var b []byte
	b = append(b, `{"address":`...)
	b = addr(b, "postalCode") // traits are camelCase, as Segment's spec names them
	b = append(b, `,"createdAt":"`...)
	b = appendISO(b, created)
	b = append(b, `","email":`...)
	b = appendStr(b, email)
	b = append(b, `,"firstName":`...)
	b = appendStr(b, fn.display)
	b = append(b, `,"lastName":`...)
	b = appendStr(b, ln.display)
	b = append(b, `,"logins":`...)
	p := person{first: fn.display, traitsHead: string(b)}
	b = append(b[:0], `,"plan":`...)
	b = appendStr(b, pick(r, plans))
	b = append(b, '}')
	p.traitsTail = string(b)
	p.shipTo = string(addr(nil, "postal_code")) // properties are snake_case
	return p
}
