package transform

import (
	"bufio"
	"encoding/csv"
	"io"
	"strconv"
	"time"
	"unsafe"

	"github.com/klauspost/compress/gzip"
)

// CSV renders timestamps as text a reader can parse without a zone: the
// local wall clock as "2006-01-02 15:04:05.000000", the instant with a Z.
const (
	csvLocalLayout = "2006-01-02 15:04:05.000000"
	csvUTCLayout   = "2006-01-02 15:04:05.000000Z"
)

func writeCSV(w io.Writer, spec Spec, pd *partitionData, next rowIter) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var gz *gzip.Writer
	var dst io.Writer = bw
	if spec.Compression == "gzip" {
		gz = gzip.NewWriter(bw)
		dst = gz
	}
	cw := csv.NewWriter(dst)
	ncol := len(pd.cols)
	rec := make([]string, ncol)
	for i, c := range pd.cols {
		rec[i] = c.Name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	vals := make([]fieldValue, ncol)
	var buf []byte
	for {
		r, err := next()
		if err != nil {
			return err
		}
		if r == nil {
			break
		}
		buf = buf[:0]
		if buf, err = pd.decodeRow(r, vals, buf); err != nil {
			return err
		}
		for c, v := range vals {
			if v.null {
				rec[c] = ""
				continue
			}
			s := len(buf)
			switch pd.cols[c].Type {
			case TypeString:
				rec[c] = unsafe.String(unsafe.SliceData(v.b), len(v.b))
				continue
			case TypeBool:
				buf = strconv.AppendBool(buf, v.t)
			case TypeBigint:
				buf = strconv.AppendInt(buf, v.i, 10)
			case TypeDouble:
				buf = strconv.AppendFloat(buf, v.f, 'g', -1, 64)
			case TypeLocalTime:
				buf = time.UnixMicro(v.i).UTC().AppendFormat(buf, csvLocalLayout)
			case TypeUTCTime:
				buf = time.UnixMicro(v.i).UTC().AppendFormat(buf, csvUTCLayout)
			}
			b := buf[s:]
			rec[c] = unsafe.String(unsafe.SliceData(b), len(b))
		}
		// csv.Writer copies the strings before Write returns, so rec may
		// point into buffers that the next row reuses.
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}
