package transform

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// maxStatisticsBytes is the longest min or max value a column chunk's
// statistics keep. parquet-go writes each chunk's whole min and max into
// the footer, so one 20 MB string made a 40 MB footer that every reader
// must load before it reads a row. Longer bounds are dropped, the chunk
// keeping its null count, as parquet-java (Spark, Hive) and Arrow C++ do
// at the same 4 KiB: truncating them instead would need the format's
// is_min/max_value_exact flags, which parquet-go does not write, and some
// readers answer MIN and MAX from the statistics. The page index is
// already bounded (parquet-go truncates its values to 16 bytes, which the
// format allows there).
const maxStatisticsBytes = 4096

// footerWriter passes a Parquet file through to w, except that once
// holdFooter is called it keeps what follows (the page index and the
// footer) until finish, which writes it with boundStatistics applied.
type footerWriter struct {
	w    io.Writer
	tail *bytes.Buffer // non-nil: holding
}

func (f *footerWriter) Write(p []byte) (int, error) {
	if f.tail != nil {
		return f.tail.Write(p)
	}
	return f.w.Write(p)
}

// holdFooter starts holding the bytes written: call it after the last row
// group is flushed, so that only the page index and footer (and the
// writer's last buffered bytes) are held.
func (f *footerWriter) holdFooter() { f.tail = new(bytes.Buffer) }

// finish writes the held bytes.
func (f *footerWriter) finish() error {
	out, err := boundStatistics(f.tail.Bytes())
	if err != nil {
		return err
	}
	_, err = f.w.Write(out)
	return err
}

// boundStatistics returns tail, the end of a Parquet file, with the min and
// max of every column chunk whose bounds are longer than
// maxStatisticsBytes removed from the footer. A footer too short to hold
// such a bound is returned as it is, without decoding it.
func boundStatistics(tail []byte) ([]byte, error) {
	if len(tail) < 8 || string(tail[len(tail)-4:]) != "PAR1" {
		return nil, errors.New("parquet: the file does not end with a footer")
	}
	n := int(binary.LittleEndian.Uint32(tail[len(tail)-8:]))
	if n <= maxStatisticsBytes {
		return tail, nil
	}
	start := len(tail) - 8 - n
	if start < 0 {
		return nil, fmt.Errorf("parquet: footer of %d bytes but %d held", n, len(tail)-8)
	}
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), tail[start:len(tail)-8], &md); err != nil {
		return nil, fmt.Errorf("parquet: decode footer: %w", err)
	}
	changed := false
	for i := range md.RowGroups {
		for j := range md.RowGroups[i].Columns {
			st := &md.RowGroups[i].Columns[j].MetaData.Statistics
			if max(len(st.MinValue), len(st.MaxValue), len(st.Min), len(st.Max)) > maxStatisticsBytes {
				st.Min, st.Max, st.MinValue, st.MaxValue = nil, nil, nil, nil
				changed = true
			}
		}
	}
	if !changed {
		return tail, nil
	}
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		return nil, fmt.Errorf("parquet: encode footer: %w", err)
	}
	out := make([]byte, 0, start+len(footer)+8)
	out = append(out, tail[:start]...)
	out = append(out, footer...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(footer)))
	return append(out, "PAR1"...), nil
}
