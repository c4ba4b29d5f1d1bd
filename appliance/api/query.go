package api

import (
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/raftstore"
)

// query holds the validated query parameters of a request.
type query struct {
	limit       int // 0: not given
	after       string
	consistency raftstore.Consistency
}

// parseQuery validates the query string: only the parameters in allowed,
// each at most once, with valid values.
func parseQuery(c *fiber.Ctx, allowed ...string) (query, error) {
	q := query{consistency: raftstore.Linearizable}
	var err error
	seen := map[string]bool{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		key, val := string(k), string(v)
		switch {
		case !slices.Contains(allowed, key):
			err = invalidParam(key, "is not accepted by this endpoint")
		case seen[key]:
			err = invalidParam(key, "must be given at most once")
		}
		if err != nil {
			return
		}
		seen[key] = true
		switch key {
		case "limit":
			n, perr := strconv.Atoi(val)
			if perr != nil || n < 1 || n > tenants.MaxListLimit {
				err = invalidParam("limit", "must be an integer between 1 and 500")
			}
			q.limit = n
		case "after":
			if !tenants.ValidID(val) {
				err = invalidParam("after", "must be a tenant id")
			}
			q.after = val
		case "stale":
			stale, perr := strconv.ParseBool(val)
			if perr != nil {
				err = invalidParam("stale", "must be true or false")
			}
			if stale {
				q.consistency = raftstore.Stale
			}
		}
	})
	return q, err
}

// tenantID returns the :id path parameter. An id that is not well formed
// cannot name a tenant, so it is answered 404 without touching storage.
func tenantID(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if !tenants.ValidID(id) {
		return "", &requestError{kind: kindNotFound, detail: "No tenant has this id."}
	}
	return id, nil
}

// validNodeID: node ids are slugs of 1 to 63 characters, the rule the node
// configuration applies.
func validNodeID(id string) bool {
	if len(id) < 1 || len(id) > 63 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
		case ch == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}
