package records

import (
	"bytes"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
)

// scope is the caller's handle on tenant's store: restricted to the
// caller's attribute scope when it has one. It is the one place the
// service makes a handle for a caller, and every read and write of a
// caller's request goes through it, so no operation can forget the
// scope.
func (s *Service) scope(caller audit.Principal, tenant string) tenancy.Scope {
	return s.tenancy.Scope(tenant).Restrict(caller.Restriction(), s.layout)
}

// newLayout declares the service's buckets to restricted handles:
// records are the items (their attributes read from the envelope), index
// and subject entries point at a record, and the collections' schemas
// (wherever schemas keeps them) are open.
func newLayout(schemas Schemas) tenancy.Layout {
	schemaBucket, _ := schemas.CurrentKey("x")
	return tenancy.NewLayout(
		tenancy.Items("records", envelopeAttributes),
		tenancy.Refs("index", func(path [][]byte, key []byte) ([][]byte, []byte, bool) {
			// index/<collection>/<field>: token || id
			if len(path) != 3 || len(key) <= tokenLen {
				return nil, nil, false
			}
			return recordsPath(string(path[1])), key[tokenLen:], true
		}),
		tenancy.Refs("subjects", func(_ [][]byte, key []byte) ([][]byte, []byte, bool) {
			// subjects/<subject>: collection 0x00 id
			c, id, ok := bytes.Cut(key, []byte{0})
			if !ok {
				return nil, nil, false
			}
			return recordsPath(string(c)), id, true
		}),
		tenancy.Refs("refs", func(_ [][]byte, key []byte) ([][]byte, []byte, bool) {
			// refs/<target collection>/<target id>: collection 0x00 id 0x00 field
			parts := bytes.Split(key, []byte{0})
			if len(parts) != 3 {
				return nil, nil, false
			}
			return recordsPath(string(parts[0])), parts[1], true
		}),
		tenancy.Open(string(schemaBucket[0])),
	)
}

// envelopeAttributes reads the attributes of a stored envelope (ok false:
// it does not decode), stopping there: the envelope's attributes come
// before its sealed fields.
var envelopeAttributes = tenancy.JSONAttributes("attributes")
