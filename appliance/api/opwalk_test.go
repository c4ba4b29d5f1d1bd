package api_test

import (
	"net/http"
	"testing"

	"github.com/custos/custos/appliance/api"
)

// operationWalk pairs openapi.json's operations with the route table's
// declarations (api.Operations) for the matrix tests that send every
// operation as each principal, and keeps which routes they walked.
type operationWalk struct {
	need   map[string]api.Operation // by "METHOD /v1/path/{param}"
	walked map[string]bool
}

func newOperationWalk() *operationWalk {
	w := &operationWalk{need: map[string]api.Operation{}, walked: map[string]bool{}}
	for _, o := range api.Operations() {
		w.need[o.Method+" /v1"+fiberParam.ReplaceAllString(o.Path, "{$1}")] = o
	}
	return w
}

// operation is the declaration of the route serving op (a HEAD is served
// by the GET route), marked walked; an operation of the spec that the
// route table lacks fails the test.
func (w *operationWalk) operation(t *testing.T, op *specOp) api.Operation {
	t.Helper()
	name := op.String()
	if op.method == http.MethodHead {
		name = "GET " + op.path
	}
	o, ok := w.need[name]
	if !ok {
		t.Fatalf("%s is in openapi.json but not in api.Operations()", op)
	}
	w.walked[name] = true
	return o
}

// checkAllWalked fails the test for each route of the table that no
// operation of openapi.json reached.
func (w *operationWalk) checkAllWalked(t *testing.T) {
	t.Helper()
	for name := range w.need {
		if !w.walked[name] {
			t.Errorf("route %s is not described by openapi.json", name)
		}
	}
}
