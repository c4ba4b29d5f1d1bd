package api

import (
	"reflect"
	"regexp"
	"strings"
)

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
			ps = append(ps, DeclaredParam{Name: p.name, In: p.in.String(), Required: p.required, Schema: p.schema(),
				Format: p.typ.format, Min: p.typ.min, Max: p.typ.max, Pattern: p.typ.id})
		}
		out[key] = ps
	}
	return out
}

// DeclaredBody is a route's declaration of its body, as the tests compare
// it with openapi.json: "none", "json" or "stream", whether a JSON body is
// required, and the JSON names of its type's fields.
type DeclaredBody struct {
	Kind     string
	Required bool
	Fields   []string
}

// DeclaredBodies are the bodies every route declares, keyed as
// DeclaredParams.
func DeclaredBodies() map[string]DeclaredBody {
	out := map[string]DeclaredBody{}
	for _, rt := range (&server{}).routes() {
		key := rt.method + " /v1" + fiberParam.ReplaceAllString(rt.path, "{$1}")
		d := DeclaredBody{Kind: [...]string{bodyNone: "none", bodyJSON: "json", bodyStream: "stream"}[rt.body.kind], Required: rt.body.required}
		if rt.body.kind == bodyJSON {
			d.Fields = jsonNames(rt.body.typ)
		}
		out[key] = d
	}
	return out
}

// jsonNames are the JSON names of a struct's fields, those of untagged
// embedded structs included.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-":
		case f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct:
			names = append(names, jsonNames(f.Type)...)
		case !f.IsExported():
		case tag == "":
			names = append(names, f.Name)
		default:
			names = append(names, tag)
		}
	}
	return names
}
