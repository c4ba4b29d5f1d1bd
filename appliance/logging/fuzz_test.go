package logging_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/custos/custos/appliance/logging"
)

// Whatever a library writes to raft's standard logger (the one parser
// here: the level tag of a line) comes out as whole JSON records, one a
// line, never a raw line beside them.
func FuzzStandardWriter(f *testing.F) {
	for _, s := range []string{"[ERR] raft-net: failed to accept\n", "[WARN]x\n[INFO] y", "", "\n\n", "[ERROR]", "plain \x00 line\r\n[DEBUG] z"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var b bytes.Buffer
		l := logging.New(&b, logging.Options{Level: "debug", Format: "json"})
		w := logging.Hclog(l.With("component", "raft"), "raft").StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true})
		if n, err := w.Write(p); err != nil || n != len(p) {
			t.Fatalf("Write: %d, %v", n, err)
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(b.Bytes(), []byte("\n")), []byte("\n")) {
			if len(line) == 0 && b.Len() == 0 {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("not one JSON record: %q (%v)", line, err)
			}
		}
	})
}
