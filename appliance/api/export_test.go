package api

import "regexp"

// DeclaredParam is a route's declaration of one parameter, as the tests
// compare it with openapi.json.
type DeclaredParam struct {
	Name, In       string
	Required       bool
	Schema, Format string // OpenAPI type and format
	Min, Max       uint64 // integers; Max 0: unbounded
	Pattern        bool   // an id or name: the description must give its pattern
}

var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// DeclaredParams are the parameters every route declares, by "METHOD
// /v1/path/{param}" (the description's form).
func DeclaredParams() map[string][]DeclaredParam {
	out := map[string][]DeclaredParam{}
	for _, rt := range (&server{}).routes() {
		key := rt.method + " /v1" + fiberParam.ReplaceAllString(rt.path, "{$1}")
		ps := []DeclaredParam{}
		for _, p := range rt.params {
			ps = append(ps, DeclaredParam{Name: p.name, In: p.in.String(), Required: p.required, Schema: p.typ.schema,
				Format: p.typ.format, Min: p.typ.min, Max: p.typ.max, Pattern: p.typ.id})
		}
		out[key] = ps
	}
	return out
}
