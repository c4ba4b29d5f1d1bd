package records

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/visibility"
)

// sight is how caller reads tenant's records; masked (a request for
// masked values) masks pii and sensitive further.
func (s *Service) sight(ctx context.Context, caller audit.Principal, tenant string, masked bool) (visibility.Sight, error) {
	v, err := s.vis.Sight(ctx, caller, tenant)
	if err != nil {
		return visibility.Sight{}, err
	}
	if masked {
		v = v.Masked()
	}
	return v, nil
}

// fieldOf is the definition of field name in sc: a field the schema no
// longer names (a record written under an older version) is read as pii,
// the most guarded, of no known type.
func fieldOf(sc *collections.Schema, name string) collections.Field {
	for _, f := range sc.Fields {
		if f.Name == name {
			return f
		}
	}
	return collections.Field{Name: name, Classification: collections.ClassPII}
}

// shown is rec as a principal of sight v reads it under schema sc: values
// of classifications it reads masked are replaced by their masked form
// and listed in Masked; those it does not read are left out, and every
// field of the schema of such a classification is listed in Withheld,
// whether or not rec holds a value for it (so the list reveals nothing
// of the record).
func shown(rec Record, sc *collections.Schema, v visibility.Sight) Record {
	out := rec
	out.Fields = make(map[string]json.RawMessage, len(rec.Fields))
	out.Masked, out.Withheld = nil, nil
	for name, raw := range rec.Fields {
		f := fieldOf(sc, name)
		switch v.Of(roles.Classification(f.Classification)) {
		case roles.Clear:
			out.Fields[name] = raw
		case roles.Masked:
			out.Fields[name] = maskJSON(f.Type, raw)
			out.Masked = append(out.Masked, name)
		}
	}
	for _, f := range sc.Fields {
		if v.Of(roles.Classification(f.Classification)) == roles.None {
			out.Withheld = append(out.Withheld, f.Name)
		}
	}
	slices.Sort(out.Masked)
	slices.Sort(out.Withheld)
	return out
}

// findable checks that caller reads field f in clear, as a find by f
// requires (ErrFindWithheld otherwise).
func (s *Service) findable(ctx context.Context, caller audit.Principal, tenant string, f *collections.Field) error {
	v, err := s.sight(ctx, caller, tenant, false)
	if err != nil {
		return err
	}
	if v.Of(roles.Classification(f.Classification)) != roles.Clear {
		return ErrFindWithheld
	}
	return nil
}

// keepUnread protects, in a write by a caller of sight v, the stored
// values (cur) of the fields it does not read in clear, which it could
// not have meant to change from what it read: a value sent back in the
// masked form it read (a record read, edited and written back) stands
// for the stored value, and so — when replace is set (a whole-record
// replace, not a patch) — does leaving such a field out, since a caller
// cannot be expected to send what it was never shown. A new value for
// such a field is written (entering what one may not read back, as at
// creation); a patch's null still removes it.
func keepUnread(in Input, cur Record, sc *collections.Schema, v visibility.Sight, replace bool) Input {
	out := in
	out.Fields = make(map[string]json.RawMessage, len(in.Fields))
	for k, raw := range in.Fields {
		out.Fields[k] = raw
	}
	for name, stored := range cur.Fields {
		f := fieldOf(sc, name)
		vis := v.Of(roles.Classification(f.Classification))
		if vis == roles.Clear {
			continue
		}
		sent, ok := in.Fields[name]
		switch {
		case !ok && replace:
			out.Fields[name] = stored
		case ok && vis == roles.Masked && bytes.Equal(bytes.TrimSpace(sent), maskJSON(f.Type, stored)):
			out.Fields[name] = stored
		}
	}
	return out
}
