package main

import (
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pmo-dev/pmo/inventory"
)

// maxInventoryBody bounds an inventory file: 100,000 VMs in PMO's columns are some
// 10 MiB, and an RVTools export has many more columns.
const maxInventoryBody = 256 << 20

// importInventory upserts the VMs of a CSV or JSON file in the body, in one
// transaction; the query's site and tier fill rows that name none. It writes the
// database directly: the inventory is facts, not workflow state.
func (s *Server) importInventory(c echo.Context) error {
	ct, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	var format inventory.Format
	switch ct {
	case "text/csv":
		format = inventory.CSV
	case echo.MIMEApplicationJSON:
		format = inventory.JSON
	default:
		return problem(http.StatusUnsupportedMediaType, "send text/csv or application/json")
	}
	body := http.MaxBytesReader(c.Response(), c.Request().Body, maxInventoryBody)
	def := inventory.Defaults{Site: c.QueryParam("site"), SLATier: c.QueryParam("tier")}
	vms, err := inventory.Read(body, format, def)
	if err != nil {
		return inventoryProblem(err, http.StatusBadRequest) // any other error: the file cannot be read
	}
	counts, err := s.Store.UpsertInventory(c.Request().Context(), vms, nil)
	if err != nil {
		return inventoryProblem(err, http.StatusInternalServerError)
	}
	return c.JSON(http.StatusOK, counts)
}

// inventoryProblem lists every bad row of a file, or answers status with the error.
func inventoryProblem(err error, status int) *Problem {
	var bad inventory.Errors
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &bad):
		p := problem(http.StatusUnprocessableEntity, bad.Count()+"; nothing imported")
		p.Errors = bad
		return p
	case errors.As(err, &maxErr):
		return problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxInventoryBody))
	}
	return problem(status, err.Error())
}
