package segmentgen

import "strconv"

// Event types, as a shop app instrumented with Segment's mobile and
// e-commerce specs sends them. Each type has a fixed set of properties
// (a few optional ones aside), so the flattened table has the same
// columns for any seed and size.
const (
	evScreen uint8 = iota
	evIdentify
	evAppOpened
	evAppBackgrounded
	evAppInstalled
	evAppUpdated
	evDeepLinkOpened
	evProductsSearched
	evProductViewed
	evProductAdded
	evOrderCompleted
	numEventTypes
)

// eventWeights are per mille, in the order above: screens and lifecycle
// events dominate a real feed, orders and installs are rare.
var eventWeights = [numEventTypes]int{400, 50, 120, 90, 8, 12, 20, 70, 150, 55, 25}

// pickEventType draws a type by weight.
func pickEventType(r *rng) uint8 {
	u := r.intn(1000)
	for t, w := range eventWeights {
		if u < w {
			return uint8(t)
		}
		u -= w
	}
	return evScreen
}

var trackNames = [numEventTypes]string{
	evAppOpened: "Application Opened", evAppBackgrounded: "Application Backgrounded",
	evAppInstalled: "Application Installed", evAppUpdated: "Application Updated",
	evDeepLinkOpened: "Deep Link Opened", evProductsSearched: "Products Searched",
	evProductViewed: "Product Viewed", evProductAdded: "Product Added", evOrderCompleted: "Order Completed",
}

// product is one catalog item. Its JSON fragments are rendered once: the
// same product always has the same price, name and sku, as in a real shop.
type product struct {
	id       string
	category string
	// head is `"brand":…,"category":…`, mid `"currency":"USD","name":…,
	// "price":…,"product_id":…` and tail `"sku":…,"url":…,"variant":…`: the
	// optional coupon and quantity go between them in key order.
	head, mid, tail string
	item            string // `{"brand":…,"product_id":…` for an Order Completed products entry
	cents           int64
}

var (
	categories = []struct {
		name, code string
		nouns      []string
	}{
		{"Shoes", "SH", []string{"Runner", "Trail Shoe", "Sneaker", "Loafer"}},
		{"Outerwear", "OW", []string{"Rain Jacket", "Puffer", "Fleece", "Parka"}},
		{"Accessories", "AC", []string{"Beanie", "Scarf", "Sunglasses", "Watch Strap"}},
		{"Bags", "BG", []string{"Daypack", "Tote", "Duffel", "Sling Bag"}},
	}
	adjectives = []string{"Classic", "Everyday", "Ultralight", "Heritage", "Storm", "Urban", "Summit", "Coastal"}
	brands     = []string{"Northwind", "Acme Outdoor", "Cascadia", "Lumen & Co", "Tidewater"}
	variants   = []string{"Black", "Navy / M", "Olive", "Grey / L", "Red", "White / 9", "Sand"}
	coupons    = []string{"SPRING15", "WELCOME10", "FREESHIP", "VIP20"}
	queries    = []string{"rain jacket", "running shoes", "waterproof", "backpack", "gift for dad",
		"beanie", "sale", "trail", "tote bag women", "size 10"}
	priceRanges = []string{"0-25", "25-50", "50-100", "100-200"}
	screens     = []struct{ name, kind string }{
		{"Home", ""}, {"Home", ""}, {"Search", "search"}, {"Category", "category"}, {"Product Detail", "product"},
		{"Product Detail", "product"}, {"Cart", ""}, {"Checkout", ""}, {"Order History", ""}, {"Account", ""},
	}
	// The links carry utm_source, utm_medium and utm_campaign, the three
	// parameters every campaign tool sets; utm_content and utm_term are
	// left out, as most app links leave them out.
	campaigns = []struct{ medium, name, source string }{
		{"email", "spring_sale", "newsletter"},
		{"social", "new_arrivals", "instagram"},
		{"cpc", "brand_search", "google"},
		{"push", "cart_reminder", "braze"},
	}
)

func newProducts(seed int64) []product {
	const n = 400
	ps := make([]product, n)
	for i := range ps {
		r := newRNG(uint64(seed), uint64(i), 0x9a0d)
		c := pick(&r, categories)
		p := &ps[i]
		p.id = "prod_" + strconv.Itoa(i+1)
		p.category = c.name
		p.cents = r.between(9, 199)*100 + 99
		// A fifth of the prices are whole: JavaScript's and Java's JSON
		// writers print them without a fraction, so the crawler and the job
		// have to widen int to double.
		if r.chance(0.2) {
			p.cents -= 99
		}
		name := pick(&r, adjectives) + " " + pick(&r, c.nouns)
		url := "https://shop.example.com/p/" + p.id
		var b []byte
		b = append(b, `"brand":`...)
		b = appendStr(b, pick(&r, brands))
		b = append(b, `,"category":`...)
		b = appendStr(b, c.name)
		p.head = string(b)
		b = append(b[:0], `"price":`...)
		b = appendCents(b, p.cents)
		b = append(b, `,"product_id":`...)
		b = appendStr(b, p.id)
		price := string(b)
		b = append(b[:0], `"currency":"USD","name":`...)
		b = appendStr(b, name)
		b = append(b, ',')
		b = append(b, price...)
		p.mid = string(b)
		b = append(b[:0], `"sku":`...)
		b = appendStr(b, c.code+"-"+strconv.Itoa(10000+i*37%90000))
		b = append(b, `,"url":`...)
		b = appendStr(b, url)
		b = append(b, `,"variant":`...)
		b = appendStr(b, pick(&r, variants))
		p.tail = string(b)
		// An order line is the product without currency: the order has it.
		b = append(b[:0], '{')
		b = append(b, p.head...)
		b = append(b, `,"name":`...)
		b = appendStr(b, name)
		b = append(b, ',')
		b = append(b, price...)
		p.item = string(b)
	}
	return ps
}

// fullOrderProduct finds the product the covering Order Completed buys:
// one of them, with a coupon, under the free-shipping threshold, chosen so
// that every amount of the order has cents. Whole amounts are written as
// JSON integers, so without one fractional value a small run would type a
// money column bigint where a large one types it double.
func fullOrderProduct(ps []product) int {
	for i, p := range ps {
		o := newOrder(p.cents, true)
		if p.cents < 5000 && o.allFractional() {
			return i
		}
	}
	return 0 // not reached with the catalog newProducts makes
}

type order struct{ subtotal, discount, shipping, tax int64 }

func newOrder(subtotal int64, coupon bool) order {
	o := order{subtotal: subtotal}
	if coupon {
		o.discount = subtotal / 10
	}
	if subtotal < 5000 {
		o.shipping = 599
	}
	o.tax = (subtotal - o.discount) * 825 / 10000
	return o
}

func (o order) revenue() int64 { return o.subtotal - o.discount }

// allFractional says whether the amounts Order Completed writes, and the
// subtotal (for a one-line order, the product's price), all have cents.
func (o order) allFractional() bool {
	for _, c := range []int64{o.subtotal, o.discount, o.shipping, o.tax, o.revenue()} {
		if c%100 == 0 {
			return false
		}
	}
	return true
}

// appendProps appends `"event":…,"properties":{…},` (track), `"name":…,
// "properties":{…},` (screen) or nothing (identify). full asks for every
// optional property, so that the events plan forces to cover each type
// also cover each column.
func (rd *renderer) appendProps(b []byte, r *rng, d *device, t uint8, full bool) []byte {
	if t == evIdentify {
		return b
	}
	if t == evScreen {
		return rd.appendScreen(b, r)
	}
	b = append(b, `"event":"`...)
	b = append(b, trackNames[t]...)
	b = append(b, `","properties":{`...)
	switch t {
	case evAppOpened:
		b = append(b, `"build":`...)
		b = appendStr(b, d.appBuild)
		b = append(b, `,"from_background":`...)
		b = strconv.AppendBool(b, rd.fromBackground)
		if rd.campaign > 0 {
			b = append(b, `,"url":`...)
			b = rd.appendDeepLink(b, r)
		}
		b = append(b, `,"version":`...)
		b = appendStr(b, d.appVersion)
	case evAppBackgrounded:
		// no properties: the SDK sends an empty object
	case evAppInstalled:
		b = append(b, `"build":`...)
		b = appendStr(b, d.appBuild)
		b = append(b, `,"version":`...)
		b = appendStr(b, d.appVersion)
	case evAppUpdated:
		b = append(b, `"build":`...)
		b = appendStr(b, d.appBuild)
		b = append(b, `,"previous_build":`...)
		b = appendStr(b, d.prevBuild)
		b = append(b, `,"previous_version":`...)
		b = appendStr(b, d.prevVersion)
		b = append(b, `,"version":`...)
		b = appendStr(b, d.appVersion)
	case evDeepLinkOpened:
		b = append(b, `"url":`...)
		b = rd.appendDeepLink(b, r)
	case evProductsSearched:
		b = rd.appendSearch(b, r, full)
	case evProductViewed, evProductAdded:
		b = rd.appendProduct(b, r, t == evProductAdded, full)
	case evOrderCompleted:
		b = rd.appendOrder(b, r, d, full)
	}
	return append(b, `},`...)
}

func (rd *renderer) appendScreen(b []byte, r *rng) []byte {
	s := pick(r, screens)
	b = append(b, `"name":`...)
	b = appendStr(b, s.name)
	b = append(b, `,"properties":{`...)
	switch s.kind {
	case "category":
		b = append(b, `"category":`...)
		b = appendStr(b, pick(r, categories).name)
		b = append(b, ',')
	case "product":
		p := &rd.g.products[r.intn(len(rd.g.products))]
		b = append(b, `"category":`...)
		b = appendStr(b, p.category)
		b = append(b, `,"name":`...)
		b = appendStr(b, s.name)
		b = append(b, `,"product_id":`...)
		b = appendStr(b, p.id)
		return append(b, `},`...)
	}
	b = append(b, `"name":`...)
	b = appendStr(b, s.name)
	if s.kind == "search" {
		b = append(b, `,"query":`...)
		b = appendStr(b, pick(r, queries))
	}
	return append(b, `},`...)
}

// begin draws what an event's context depends on but its properties say:
// whether an app open came from the background, and the campaign of the
// link that opened the app, whose utm_ parameters the SDK copies into
// context.campaign.
func (rd *renderer) begin(r *rng, t uint8, full bool) {
	rd.fromBackground, rd.campaign = false, 0
	switch t {
	case evAppOpened:
		rd.fromBackground = !full && r.chance(0.65)
		if !rd.fromBackground && (full || r.chance(0.15)) {
			rd.campaign = 1 + r.intn(len(campaigns))
		}
	case evDeepLinkOpened:
		rd.campaign = 1 + r.intn(len(campaigns))
	}
}

// appendDeepLink writes the URL of the link that opened the app.
func (rd *renderer) appendDeepLink(b []byte, r *rng) []byte {
	c := rd.campaign - 1
	b = append(b, `"sluiceshop://p/`...)
	b = append(b, rd.g.products[r.intn(len(rd.g.products))].id...)
	b = append(b, `?utm_campaign=`...)
	b = append(b, campaigns[c].name...)
	b = append(b, `&utm_medium=`...)
	b = append(b, campaigns[c].medium...)
	b = append(b, `&utm_source=`...)
	b = append(b, campaigns[c].source...)
	return append(b, '"')
}

func (rd *renderer) appendCampaign(b []byte) []byte {
	c := &campaigns[rd.campaign-1]
	b = append(b, `,"campaign":{"medium":`...)
	b = appendStr(b, c.medium)
	b = append(b, `,"name":`...)
	b = appendStr(b, c.name)
	b = append(b, `,"source":`...)
	b = appendStr(b, c.source)
	return append(b, '}')
}

// appendSearch writes Products Searched: the query and the filters applied,
// an array of objects (one JSON text column after the job).
func (rd *renderer) appendSearch(b []byte, r *rng, full bool) []byte {
	b = append(b, `"filters":[`...)
	n := 1 + r.intn(3)
	if full {
		n = 3
	}
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		switch i {
		case 0:
			b = append(b, `{"type":"category","value":`...)
			b = appendStr(b, pick(r, categories).name)
		case 1:
			b = append(b, `{"type":"price","value":`...)
			b = appendStr(b, pick(r, priceRanges))
		default:
			b = append(b, `{"type":"brand","value":`...)
			b = appendStr(b, pick(r, brands))
		}
		b = append(b, '}')
	}
	b = append(b, `],"query":`...)
	return appendStr(b, pick(r, queries))
}

// appendProduct writes Product Viewed or Product Added: the product's own
// fields, and for an add the quantity and sometimes a coupon.
func (rd *renderer) appendProduct(b []byte, r *rng, added, full bool) []byte {
	p := &rd.g.products[r.intn(len(rd.g.products))]
	if full {
		p = &rd.g.products[rd.g.fullProduct] // a price with cents, see fullOrderProduct
	}
	b = append(b, p.head...)
	if added && (full || r.chance(0.15)) {
		b = append(b, `,"coupon":`...)
		b = appendStr(b, pick(r, coupons))
	}
	b = append(b, ',')
	b = append(b, p.mid...)
	if added {
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, r.between(1, 3), 10)
	}
	b = append(b, ',')
	return append(b, p.tail...)
}

// appendOrder writes Order Completed with amounts that add up: revenue is
// the products' prices times their quantities less the discount, and tax is
// on revenue. Whole amounts come out without a fraction, like the prices.
func (rd *renderer) appendOrder(b []byte, r *rng, d *device, full bool) []byte {
	var lines [3]struct {
		p   *product
		qty int64
	}
	n := 1 + r.intn(3)
	var subtotal int64
	for i := range n {
		lines[i].p = &rd.g.products[r.intn(len(rd.g.products))]
		lines[i].qty = r.between(1, 2)
		subtotal += lines[i].p.cents * lines[i].qty
	}
	coupon := r.chance(0.25)
	if full {
		n, coupon = 1, true
		lines[0].p, lines[0].qty = &rd.g.products[rd.g.fullProduct], 1
		subtotal = lines[0].p.cents
	}
	o := newOrder(subtotal, coupon)
	if coupon {
		b = append(b, `"coupon":`...)
		b = appendStr(b, pick(r, coupons))
		b = append(b, ',')
	}
	b = append(b, `"currency":"USD","discount":`...)
	b = appendCents(b, o.discount)
	b = append(b, `,"order_id":"`...)
	b = appendHex(b, r.next(), 10)
	b = append(b, `","products":[`...)
	for i, l := range lines[:n] {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l.p.item...)
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, l.qty, 10)
		b = append(b, ',')
		b = append(b, l.p.tail...)
		b = append(b, '}')
	}
	b = append(b, `],"revenue":`...)
	b = appendCents(b, o.revenue())
	b = append(b, `,"shipping":`...)
	b = appendCents(b, o.shipping)
	b = append(b, `,"shipping_address":`...)
	b = append(b, d.person.shipTo...)
	b = append(b, `,"tax":`...)
	return appendCents(b, o.tax)
}
