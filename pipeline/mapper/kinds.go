package mapper

import (
	"sluice/pipeline/column"
	"sluice/pipeline/intermediate"
)

// Field kinds of the intermediate format, and their bits in a column's
// type mask.
const (
	kindNull   = intermediate.KindNull
	kindBool   = intermediate.KindBool
	kindInt    = intermediate.KindInt
	kindDouble = intermediate.KindDouble
	kindString = intermediate.KindString

	maskNull   = column.MaskNull
	maskBool   = column.MaskBool
	maskInt    = column.MaskInt
	maskDouble = column.MaskDouble
	maskString = column.MaskString
)
