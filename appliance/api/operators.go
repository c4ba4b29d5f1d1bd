package api

import (
	"context"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/identity/accounts"
)

// Operator users: the cluster's own people, in the accounts service's
// operators' realm (accounts.OperatorRealm). The routes need the cluster
// permissions of the Operator role (cluster:update to change, cluster:read
// to read), so the root token and every operator user manage them, and no
// tenant principal reaches them. They log in at POST /v1/auth/login
// without a tenant.

func (s *server) createOperator(c *fiber.Ctx, in *input) error {
	req := bodyOf[client.NewOperator](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	u, err := s.deps.Accounts.CreateUser(ctx, in.who, accounts.OperatorRealm, accounts.CreateUserInput{Username: req.Username, Password: req.Password, Role: accounts.OperatorRole})
	if err != nil {
		return fmt.Errorf("api: create operator: %w", err)
	}
	c.Location("/v1/sys/operators/" + u.ID)
	return c.Status(fiber.StatusCreated).JSON(u)
}

func (s *server) listOperators(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	us, err := s.deps.Accounts.ListUsers(ctx, in.who, accounts.OperatorRealm)
	if err != nil {
		return fmt.Errorf("api: list operators: %w", err)
	}
	return c.JSON(userList{Users: us})
}

func (s *server) getOperator(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	u, err := s.deps.Accounts.GetUser(ctx, in.who, accounts.OperatorRealm, in.str("uid"))
	if err != nil {
		return fmt.Errorf("api: operator: %w", err)
	}
	return c.JSON(u)
}

// operatorAction serves the POST /sys/operators/:uid/<action> routes with
// the action of the tenant users' routes, in the operators' realm.
func (s *server) operatorAction(act func(ctx context.Context, who audit.Principal, tenant, uid string) (accounts.User, error)) handlerFunc {
	return func(c *fiber.Ctx, in *input) error {
		ctx, cancel := s.callContext(c)
		defer cancel()
		u, err := act(ctx, in.who, accounts.OperatorRealm, in.str("uid"))
		if err != nil {
			return fmt.Errorf("api: operator: %w", err)
		}
		return c.JSON(u)
	}
}
