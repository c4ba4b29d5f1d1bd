package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/records"
)

// Columns every record file has besides its schema's fields. A field
// name starts with a letter (collections.ValidName), so these names,
// starting with '_', never clash with one.
const (
	colID      = "_id"
	colCreated = "_created_at"
	colUpdated = "_updated_at"
	colVersion = "_version"
	colSubject = "_subject"
	// colOther holds, as a JSON object, the fields a record has that its
	// collection's current schema no longer names (written under an
	// older version): the export leaves nothing out.
	colOther = "_other"
)

// recordWriter writes one collection's records in one format.
type recordWriter interface {
	write(rec records.Record) error
	close() error
}

// newRecordWriter starts a file of sc's records on w.
func newRecordWriter(f Format, w io.Writer, sc *collections.Schema) recordWriter {
	switch f {
	case FormatCSV:
		return newCSVWriter(w, sc)
	case FormatParquet:
		return newParquetWriter(w, sc)
	default:
		return newJSONWriter(w)
	}
}

// extension is a record file's extension in format f.
func extension(f Format) string {
	switch f {
	case FormatCSV:
		return ".csv"
	case FormatParquet:
		return ".parquet"
	default:
		return ".json"
	}
}

// jsonRecord is a record in a JSON export.
type jsonRecord struct {
	ID         string                     `json:"id"`
	Subject    string                     `json:"subject,omitempty"`
	Attributes map[string]string          `json:"attributes,omitempty"`
	Version    uint64                     `json:"version"`
	CreatedAt  time.Time                  `json:"created_at"`
	UpdatedAt  time.Time                  `json:"updated_at"`
	Fields     map[string]json.RawMessage `json:"fields"`
}

// jsonArray writes a JSON array one element at a time.
type jsonArray struct {
	w *bufio.Writer
	n int
}

func newJSONArray(w io.Writer) *jsonArray { return &jsonArray{w: bufio.NewWriterSize(w, 32<<10)} }

func (a *jsonArray) add(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("export: json: %w", err)
	}
	sep := ",\n"
	if a.n == 0 {
		sep = "[\n"
	}
	a.n++
	a.w.WriteString(sep)
	_, err = a.w.Write(b)
	return err
}

func (a *jsonArray) close() error {
	if a.n == 0 {
		a.w.WriteString("[")
	}
	a.w.WriteString("\n]\n")
	return a.w.Flush()
}

type jsonWriter struct{ a *jsonArray }

func newJSONWriter(w io.Writer) *jsonWriter { return &jsonWriter{a: newJSONArray(w)} }

func (j *jsonWriter) write(rec records.Record) error {
	return j.a.add(jsonRecord{ID: rec.ID, Subject: rec.Subject, Attributes: rec.Attributes, Version: rec.Version,
		CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, Fields: rec.Fields})
}

func (j *jsonWriter) close() error { return j.a.close() }

// csvWriter: one row per record, the columns _id, _subject, _created_at,
// _updated_at, _version, the schema's fields in its order, _other. A
// value that is a JSON string is written as the string; any other value
// as its JSON text.
type csvWriter struct {
	w      *csv.Writer
	fields []string
	row    []string
}

func newCSVWriter(w io.Writer, sc *collections.Schema) *csvWriter {
	c := &csvWriter{w: csv.NewWriter(w)}
	for _, f := range sc.Fields {
		c.fields = append(c.fields, f.Name)
	}
	header := append([]string{colID, colSubject, colCreated, colUpdated, colVersion}, c.fields...)
	header = append(header, colOther)
	_ = c.w.Write(header) // errors surface at Flush
	return c
}

func (c *csvWriter) write(rec records.Record) error {
	c.row = append(c.row[:0], rec.ID, rec.Subject, formatTime(rec.CreatedAt), formatTime(rec.UpdatedAt), strconv.FormatUint(rec.Version, 10))
	for _, name := range c.fields {
		c.row = append(c.row, text(rec.Fields[name]))
	}
	other, err := otherFields(rec, c.fields)
	if err != nil {
		return err
	}
	c.row = append(c.row, other)
	return c.w.Write(c.row)
}

func (c *csvWriter) close() error {
	c.w.Flush()
	return c.w.Error()
}

// text is a field's value as a cell: a JSON string unquoted, anything
// else its JSON text; "" when absent.
func text(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

// otherFields is the JSON object of rec's fields not in named ("" when
// none).
func otherFields(rec records.Record, named []string) (string, error) {
	if len(rec.Fields) <= len(named) {
		all := true
		for k := range rec.Fields {
			if !contains(named, k) {
				all = false
				break
			}
		}
		if all {
			return "", nil
		}
	}
	other := map[string]json.RawMessage{}
	for k, v := range rec.Fields {
		if !contains(named, k) {
			other[k] = v
		}
	}
	if len(other) == 0 {
		return "", nil
	}
	b, err := json.Marshal(other)
	if err != nil {
		return "", fmt.Errorf("export: other fields: %w", err)
	}
	return string(b), nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// parquetWriter: the CSV file's columns with types — numbers as doubles,
// bools as booleans, the record's times as timestamps (ns, UTC), other
// values as strings (a time field as stored, RFC 3339; a json field as
// its JSON text); every schema field optional. Row groups of
// parquetRowGroup rows bound what the writer buffers.
type parquetWriter struct {
	w      *parquet.GenericWriter[any] // any: the schema is the collection's, known at run time
	fields []collections.Field
}

const parquetRowGroup = 4096

func newParquetWriter(w io.Writer, sc *collections.Schema) *parquetWriter {
	g := parquet.Group{
		colID:      parquet.String(),
		colSubject: parquet.Optional(parquet.String()),
		colCreated: parquet.Timestamp(parquet.Nanosecond),
		colUpdated: parquet.Timestamp(parquet.Nanosecond),
		colVersion: parquet.Int(64),
		colOther:   parquet.Optional(parquet.String()),
	}
	for _, f := range sc.Fields {
		var n parquet.Node
		switch f.Type {
		case collections.TypeNumber:
			n = parquet.Leaf(parquet.DoubleType)
		case collections.TypeBool:
			n = parquet.Leaf(parquet.BooleanType)
		default:
			n = parquet.String()
		}
		g[f.Name] = parquet.Optional(n)
	}
	schema := parquet.NewSchema(sc.Name, g)
	fields := append([]collections.Field(nil), sc.Fields...)
	sort.Slice(fields, func(i, j int) bool { return fields[i].Name < fields[j].Name })
	return &parquetWriter{w: parquet.NewGenericWriter[any](w, schema, parquet.MaxRowsPerRowGroup(parquetRowGroup)), fields: fields}
}

func (p *parquetWriter) write(rec records.Record) error {
	row := map[string]any{
		colID: rec.ID, colCreated: rec.CreatedAt.UTC(), colUpdated: rec.UpdatedAt.UTC(), colVersion: int64(rec.Version),
		colSubject: nil, colOther: nil,
	}
	if rec.Subject != "" {
		row[colSubject] = rec.Subject
	}
	names := make([]string, 0, len(p.fields))
	for _, f := range p.fields {
		names = append(names, f.Name)
		raw, ok := rec.Fields[f.Name]
		if !ok {
			row[f.Name] = nil
			continue
		}
		switch f.Type {
		case collections.TypeNumber:
			var v float64
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("export: %s/%s: number field %s: %w", rec.Collection, rec.ID, f.Name, err)
			}
			row[f.Name] = v
		case collections.TypeBool:
			var v bool
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("export: %s/%s: bool field %s: %w", rec.Collection, rec.ID, f.Name, err)
			}
			row[f.Name] = v
		default:
			row[f.Name] = text(raw)
		}
	}
	other, err := otherFields(rec, names)
	if err != nil {
		return err
	}
	if other != "" {
		row[colOther] = other
	}
	if _, err := p.w.Write([]any{row}); err != nil {
		return fmt.Errorf("export: parquet %s/%s: %w", rec.Collection, rec.ID, err)
	}
	return nil
}

func (p *parquetWriter) close() error {
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("export: parquet: %w", err)
	}
	return nil
}

// writeJSONList writes v, a value that encodes as a JSON array, as a
// JSON array one element a line, and returns its length.
func writeJSONList(w io.Writer, v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("export: json: %w", err)
	}
	var elems []json.RawMessage
	if string(b) != "null" {
		if err := json.Unmarshal(b, &elems); err != nil {
			return 0, fmt.Errorf("export: json: not a list: %w", err)
		}
	}
	arr := newJSONArray(w)
	for _, e := range elems {
		if err := arr.add(e); err != nil {
			return 0, err
		}
	}
	return uint64(len(elems)), arr.close()
}
