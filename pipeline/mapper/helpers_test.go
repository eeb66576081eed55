package mapper

import (
	"sluice/pipeline/transform"
	"sluice/pipeline/transform/transformtest"
)

func testSpec() transform.Spec {
	s := transform.DefaultSpec()
	s.ShardBytes = 1 << 20
	return s
}

var (
	ev        = transformtest.Event
	gz        = transformtest.Gzip
	dayFolder = transformtest.DayFolder
	put       = transformtest.Put
	window    = transformtest.Window
)
