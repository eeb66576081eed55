package mapper

import (
	"sluice/pipeline/intermediate"
)

// Field kinds of the intermediate format.
const (
	kindNull   = intermediate.KindNull
	kindBool   = intermediate.KindBool
	kindInt    = intermediate.KindInt
	kindDouble = intermediate.KindDouble
	kindString = intermediate.KindString
)
