package testenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"
)

var namespaces atomic.Int64

// notNameChars are the characters of a test's name that a namespace name cannot hold.
var notNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace registers a Temporal namespace of the test's own on the server at address,
// waits until the server serves it, and returns its name. Workers poll task queues
// within a namespace, so no other test's worker, database or leftovers can meet this
// test's workflows, although the production queue names stay as they are. When the
// test ends, it terminates every workflow still running in the namespace and deletes
// its schedules: nothing the test started outlives it.
func Namespace(t testing.TB, address string) string {
	t.Helper()
	short := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(short) > 60 {
		short = short[:60]
	}
	name := fmt.Sprintf("t%d-%d-%s", os.Getpid(), namespaces.Add(1), short)
	opts := client.Options{HostPort: address, Namespace: name, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))}
	nc, err := client.NewNamespaceClient(opts)
	if err != nil {
		t.Fatalf("testenv: temporal at %s: %v", address, err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: name, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	}); err != nil {
		t.Fatalf("testenv: register namespace %s: %v", name, err)
	}
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatalf("testenv: temporal at %s: %v", address, err)
	}
	t.Cleanup(func() { endNamespace(t, c, name) })
	// A server serves a new namespace once its namespace cache has it: the dev server at
	// once, a cluster's frontend within its refresh interval.
	for {
		_, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: name, PageSize: 1})
		if err == nil {
			return name
		}
		if ctx.Err() != nil {
			t.Fatalf("testenv: namespace %s is not served: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// endNamespace terminates the workflows still running in the namespace and deletes its
// schedules. The server may be gone (a test that kills its own): then there is nothing
// left to end.
func endNamespace(t testing.TB, c client.Client, name string) {
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{}); err == nil {
		for it.HasNext() {
			s, err := it.Next()
			if err != nil {
				break
			}
			_ = c.ScheduleClient().GetHandle(ctx, s.ID).Delete(ctx)
		}
	}
	// Terminated workflows leave the list, so each round reads its first page again.
	for range 10 {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: name, Query: `ExecutionStatus = "Running"`, PageSize: 1000})
		if err != nil || len(resp.GetExecutions()) == 0 {
			return
		}
		for _, e := range resp.GetExecutions() {
			err := c.TerminateWorkflow(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), "the test that started it ended")
			var gone *serviceerror.NotFound
			if err != nil && !errors.As(err, &gone) {
				t.Logf("testenv: terminate %s in %s: %v", e.GetExecution().GetWorkflowId(), name, err)
			}
		}
	}
}
