package tenancy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/custos/custos/raftstore"
)

// # Attribute scopes
//
// A principal may be confined to the items (records, blobs) whose
// attributes match its scope — a concierge of one property sees that
// property's guests only. The rule is enforced here, in the handle, the
// way row-level security confines every query of a database to the rows a
// policy admits, rather than by every handler remembering to filter:
//
//   - a [Restriction] is the scope: attribute name → the values allowed. An
//     item matches when, for every name of the restriction, the item has
//     that attribute and its value is one of the allowed values. An item
//     that lacks a scoped attribute does not match: a scope names what a
//     principal may see, and an item nobody labelled is not known to be
//     inside it (fail closed).
//   - a [Layout] is what a service declares of its buckets, by the first
//     name of their paths: [Items] buckets hold items (and say how to read
//     an item's attributes from its stored value), [Refs] buckets hold
//     entries that point at an item (an index entry, a subject's list, a
//     blob's chunks) and say which, and [Open] buckets hold nothing
//     scoped (schemas, upload markers).
//   - [Scope.Restrict] gives the restricted handle. Its reads never see an
//     item outside the restriction, nor an entry pointing at one: Get finds
//     nothing, Scan skips it, Count does not count it — exactly as if it
//     did not exist, so that out of scope answers as missing does. A
//     bucket the layout does not declare reads as empty (a service cannot
//     forget to declare one and leak it). Its writes refuse
//     ([ErrRestricted], nothing applied) to put an item whose new
//     attributes are outside the restriction (a scoped principal cannot
//     create an item outside its scope, nor move one out of it), to
//     overwrite or delete an item that is outside it now, to delete a
//     bucket of items, and any write on an undeclared bucket. Writes of
//     references and of open buckets are not checked: a reference is seen
//     only with its item.
//
// An unrestricted Restriction (no names) leaves the Scope as it is.

// Restriction is an attribute scope: for each attribute name, the values
// an item's attribute may have. The zero Restriction is unrestricted. It
// is immutable once made.
type Restriction struct {
	allow map[string][]string // nil: unrestricted
}

// Restrict makes the restriction of scopes (attribute name → allowed
// values; nil or empty: unrestricted). A name with no values admits no
// item.
func Restrict(scopes map[string][]string) Restriction {
	if len(scopes) == 0 {
		return Restriction{}
	}
	m := make(map[string][]string, len(scopes))
	for name, values := range scopes {
		m[name] = slices.Clone(values)
	}
	return Restriction{allow: m}
}

// Restricted reports whether r restricts anything.
func (r Restriction) Restricted() bool { return r.allow != nil }

// Allows reports whether an item of these attributes is inside r: for
// every attribute name r names, the item has the attribute with one of
// the values r allows.
func (r Restriction) Allows(attrs map[string]string) bool {
	for name, values := range r.allow {
		v, ok := attrs[name]
		if !ok || !slices.Contains(values, v) {
			return false
		}
	}
	return true
}

// bucketKind is what a bucket of a Layout holds.
type bucketKind int

const (
	bucketOpen bucketKind = iota + 1
	bucketItems
	bucketRefs
)

// BucketRule declares one bucket of a Layout (made by Items, Refs, Open).
type BucketRule struct {
	name  string
	kind  bucketKind
	attrs func(value []byte) (map[string]string, bool)
	ref   func(path [][]byte, key []byte) (bucket [][]byte, itemKey []byte, ok bool)
}

// Items declares the buckets named name (and those below it) as holding
// items, whose attributes attrs reads from a stored value (ok false: the
// value does not decode, and the item is outside every restriction).
func Items(name string, attrs func(value []byte) (map[string]string, bool)) BucketRule {
	return BucketRule{name: name, kind: bucketItems, attrs: attrs}
}

// Refs declares the buckets named name (and those below it) as holding
// entries that point at items: to gives, for an entry's full relative
// path and key, the bucket (of an Items rule) and key of its item (ok
// false: it names none, and is never seen through a restricted handle).
func Refs(name string, to func(path [][]byte, key []byte) (bucket [][]byte, itemKey []byte, ok bool)) BucketRule {
	return BucketRule{name: name, kind: bucketRefs, ref: to}
}

// JSONAttributes reads the attributes of an item stored as a JSON object
// from its top-level member name (an object of strings; absent: no
// attributes), for Items. It decodes only that member: the others are
// skipped by their bounds (jsonmember.go), so that a restricted read of a
// record does not decode its sealed fields, which it does not look at
// (decoding a record's envelope whole costs several times the read). A
// value that is not a JSON object, or whose member is not an object of
// strings, reads as undecodable.
func JSONAttributes(name string) func(value []byte) (map[string]string, bool) {
	return func(v []byte) (map[string]string, bool) {
		raw, found, ok := jsonMember(v, name)
		if !ok {
			return nil, false
		}
		if !found {
			return nil, true
		}
		var attrs map[string]string
		if json.Unmarshal(raw, &attrs) != nil {
			return nil, false
		}
		return attrs, true
	}
}

// Open declares the buckets named name (and those below it) as holding
// nothing a restriction concerns: read and written as they are.
func Open(name string) BucketRule { return BucketRule{name: name, kind: bucketOpen} }

// Layout is a service's declaration of its buckets for restricted
// handles. It is immutable once made.
type Layout struct{ rules map[string]BucketRule }

// NewLayout declares buckets. Two rules of one name, or a rule without
// its function, is a programming mistake and panics.
func NewLayout(rules ...BucketRule) Layout {
	m := make(map[string]BucketRule, len(rules))
	for _, r := range rules {
		if _, dup := m[r.name]; dup || r.name == "" || (r.kind == bucketItems && r.attrs == nil) || (r.kind == bucketRefs && r.ref == nil) {
			panic(fmt.Sprintf("tenancy: layout rule %q declared twice or incomplete", r.name))
		}
		m[r.name] = r
	}
	return Layout{rules: m}
}

// rule is the rule of a relative path (ok false: undeclared).
func (l Layout) rule(path [][]byte) (BucketRule, bool) {
	if len(path) == 0 {
		return BucketRule{}, false
	}
	r, ok := l.rules[string(path[0])]
	return r, ok
}

// restriction is a Scope's restriction with the layout that interprets
// its buckets; nil on an unrestricted Scope.
type restriction struct {
	r Restriction
	l Layout
}

// Restrict returns s confined to the items r allows, its buckets read as l
// declares them (see "Attribute scopes" above). An unrestricted r returns
// s as it is.
func (s Scope) Restrict(r Restriction, l Layout) Scope {
	if !r.Restricted() {
		return s
	}
	s.restrict = &restriction{r: r, l: l}
	return s
}

// Restricted reports whether s is confined by an attribute scope.
func (s Scope) Restricted() bool { return s.restrict != nil }

// inside reports whether the stored value v of an item at bucket is
// inside the restriction.
func (x *restriction) inside(rule BucketRule, v []byte) bool {
	attrs, ok := rule.attrs(v)
	return ok && x.r.Allows(attrs)
}

// visible reports whether the entry key = v of bucket (relative) is seen
// through the restricted read r: an open bucket's always, an item inside
// the restriction, a reference whose item exists and is inside it.
func (x *restriction) visible(r Read, bucket [][]byte, key, v []byte) bool {
	rule, ok := x.l.rule(bucket)
	if !ok {
		return false
	}
	switch rule.kind {
	case bucketOpen:
		return true
	case bucketItems:
		return x.inside(rule, v)
	case bucketRefs:
		ib, ik, ok := rule.ref(bucket, key)
		if !ok {
			return false
		}
		irule, ok := x.l.rule(ib)
		if !ok || irule.kind != bucketItems {
			return false
		}
		abs, err := r.s.abs(ib)
		if err != nil {
			return false
		}
		iv, _, found := r.r.Get(abs, ik)
		return found && x.inside(irule, iv)
	}
	return false
}

// open reports whether bucket reads as it is through the restricted read.
func (x *restriction) open(bucket [][]byte) bool {
	rule, ok := x.l.rule(bucket)
	return ok && rule.kind == bucketOpen
}

// checkWrites refuses a transaction of a restricted scope that writes an
// undeclared bucket, puts an item whose new attributes are outside the
// restriction, deletes a whole bucket of items, or
// overwrites or deletes an item that is outside it now (read from this
// node's state: the service conditions the write on the version it read
// through the same restriction, so a newer version fails that condition
// anyway). A put conditioned on its key's absence overwrites nothing.
func (s Scope) checkWrites(ctx context.Context, t *Txn) error {
	x := s.restrict
	absent := func(o raftstore.Op) bool {
		for _, c := range t.Conds {
			if c.Kind == raftstore.CondAbsent && bytes.Equal(c.Key, o.Key) && samePath(c.Bucket, o.Bucket) {
				return true
			}
		}
		return false
	}
	var current []raftstore.Op // item writes whose current value must be inside
	for _, o := range t.Ops {
		rule, ok := x.l.rule(o.Bucket)
		if !ok {
			return fmt.Errorf("%w: a write on undeclared bucket %q", ErrRestricted, o.Bucket)
		}
		if rule.kind != bucketItems {
			continue // references are hidden when their item is; open buckets hold nothing scoped
		}
		if o.Kind == raftstore.OpDeleteBucket {
			return fmt.Errorf("%w: a bucket deletion below %q", ErrRestricted, o.Bucket)
		}
		if o.Kind == raftstore.OpPut && !x.inside(rule, o.Value) {
			return fmt.Errorf("%w: the item's attributes", ErrRestricted)
		}
		if !absent(o) {
			current = append(current, o)
		}
	}
	if len(current) == 0 {
		return nil
	}
	var outside bool
	if err := s.b.raw.View(ctx, raftstore.Stale, func(r *raftstore.ReadTx) error {
		for _, o := range current {
			abs, err := s.abs(o.Bucket)
			if err != nil {
				return err
			}
			rule, _ := x.l.rule(o.Bucket)
			if v, _, ok := r.Get(abs, o.Key); ok && !x.inside(rule, v) {
				outside = true
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("tenancy: check a restricted write: %w", err)
	}
	if outside {
		return fmt.Errorf("%w: a write of an item outside it", ErrRestricted)
	}
	return nil
}

func samePath(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}
