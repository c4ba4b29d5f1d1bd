package roles

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/custos/custos/internal/validation"
)

// Custom is a tenant's own role, as stored and as the API takes it:
//
//	{"name": "night-desk", "title": "Night desk",
//	 "permissions": ["records:read", "records:update"],
//	 "visibility": {"pii": "clear", "sensitive": "masked", "internal": "clear"},
//	 "mfa": false}
//
// It is built from the same permissions and visibilities as the
// built-in roles. Validate it (or use [ParseCustom]) before [Custom.Role].
type Custom struct {
	Name        string                        `json:"name"`
	Title       string                        `json:"title,omitempty"`
	Permissions []string                      `json:"permissions"`
	Visibility  map[Classification]Visibility `json:"visibility"`
	// MFA asks for MFA even when no permission requires it (a role
	// holding a privileged permission requires it regardless).
	MFA bool `json:"mfa,omitempty"`
}

// customName is a custom role's name: lower-case letters, digits and
// hyphens, starting with a letter, 2 to 40 characters; the built-in
// roles' names are reserved.
var customName = regexp.MustCompile(`^[a-z][a-z0-9-]{1,39}$`)

const maxTitle = 100

// Validate checks c: a name matching the pattern and not a built-in
// role's, a title of at most 100 characters, one or more known
// permissions without repeats and none the Operator's alone, and a
// visibility for each of the three classifications. It reports the
// first problem as a *validation.FieldError.
func (c *Custom) Validate() error {
	if !customName.MatchString(c.Name) {
		return validation.Field("name", "must be 2 to 40 lower-case letters, digits or hyphens, starting with a letter")
	}
	if _, taken := Builtin(c.Name); taken {
		return validation.Field("name", "is the name of a built-in role")
	}
	if len([]rune(c.Title)) > maxTitle || strings.TrimSpace(c.Title) != c.Title {
		return validation.Field("title", "must be at most 100 characters without leading or trailing space")
	}
	if len(c.Permissions) == 0 {
		return validation.Field("permissions", "must name at least one permission")
	}
	seen := map[Permission]bool{}
	for i, s := range c.Permissions {
		at := fmt.Sprintf("permissions[%d]", i)
		p, err := ParsePermission(s)
		if err != nil {
			return validation.Field(at, "must be a known permission, such as records:read")
		}
		if operatorOnly.Has(p) {
			return validation.Field(at, "is the operator's alone")
		}
		if seen[p] {
			return validation.Field(at, "is listed twice")
		}
		seen[p] = true
	}
	for _, cl := range Classifications() {
		if v, ok := c.Visibility[cl]; !ok || !v.valid() {
			return validation.Field("visibility."+string(cl), "must be clear, masked or none")
		}
	}
	if len(c.Visibility) != len(Classifications()) {
		return validation.Field("visibility", "must name only pii, sensitive and internal")
	}
	return nil
}

// Role returns the role c defines, after validating it.
func (c *Custom) Role() (Role, error) {
	if err := c.Validate(); err != nil {
		return Role{}, err
	}
	var perms Set
	for _, s := range c.Permissions {
		p, _ := ParsePermission(s)
		perms = perms.Union(SetOf(p))
	}
	title := c.Title
	if title == "" {
		title = c.Name
	}
	return Role{
		name: c.Name, title: title, perms: perms, mfa: c.MFA,
		vis: visibility{pii: c.Visibility[PII], sensitive: c.Visibility[Sensitive], internal: c.Visibility[Internal]},
	}, nil
}

// ParseCustom decodes a custom role from its JSON form strictly (unknown
// fields and trailing data are refused) and returns the role it
// defines. Malformed JSON is a *validation.FieldError on "role".
func ParseCustom(data []byte) (Role, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Custom
	if err := dec.Decode(&c); err != nil {
		return Role{}, validation.Field("role", "must be a JSON object with name, title, permissions, visibility and mfa")
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		return Role{}, validation.Field("role", "must be one JSON object")
	}
	return c.Role()
}

// Custom returns r's JSON form (for a built-in role too: showing a
// built-in role is showing what a custom copy of it would hold).
func (r Role) Custom() Custom {
	c := Custom{Name: r.name, Title: r.title, MFA: r.mfa, Visibility: map[Classification]Visibility{}, Permissions: []string{}}
	for _, p := range r.perms.List() {
		c.Permissions = append(c.Permissions, p.String())
	}
	for _, cl := range Classifications() {
		c.Visibility[cl] = r.Visibility(cl)
	}
	return c
}
