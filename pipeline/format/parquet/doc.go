// Package parquet writes Sluice's Parquet files: typed column values of a
// row group in, column chunks out, with parquet-go's encoders (PLAIN,
// RLE, RLE_DICTIONARY, DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY), its
// compression codecs and its thrift definitions of the format.
//
// parquet-go's own writer takes one boxed parquet.Value per cell, keeps an
// optional column's rows in a second index, and looks every value of a
// dictionary column up in a Go map as it arrives; on Segment events that
// was about 85 ns per cell, half of the job. Here a column's values arrive
// as typed slices, a chunk is encoded in one pass over them, a dictionary
// is built once per chunk and sorted, so that page bounds come from the
// smallest and largest index of each page instead of comparing values, and
// page statistics are computed where the values already are. What the
// writer knows of each column (values, nulls, bounds, sizes) is returned
// to the caller for table formats that record it.
//
// A file is written by one Writer, or assembled: fragments written by
// many tasks (each a valid Parquet file holding some columns of some row
// groups) are combined by Assemble into the sections of one file, the
// column chunks copied as they are (on S3 by UploadPartCopy) and the page
// indexes and footer written anew. An assembled file has the bytes a
// single Writer gives for the same row groups.
package parquet
