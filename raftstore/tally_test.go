package raftstore

import (
	"fmt"
	"strings"
	"testing"
)

// ChainTally counts each append under the key the hook names, in the
// transaction of the append: across entries and batches, not for a
// transaction the chain fault refuses, not for keys the hook declines or
// that are too long; ReadTx.ChainTally reads a key range in order.
func TestFSMChainTally(t *testing.T) {
	f := newTestFSM(t)
	f.chainTally = func(chain, data []byte) []byte {
		day, kind, ok := strings.Cut(string(data), " ")
		switch {
		case !ok:
			return nil
		case kind == "long":
			return []byte(strings.Repeat("x", maxTallyKey+1))
		}
		return []byte(string(chain) + "|" + day + "/" + kind)
	}
	f.chainFault = func(_, data []byte) error {
		if strings.HasPrefix(string(data), "poison") {
			return errInjected
		}
		return nil
	}
	app := func(chain string, recs ...string) *Txn {
		t := &Txn{}
		for _, r := range recs {
			t.Appends = append(t.Appends, Append{Chain: []byte(chain), Data: []byte(r)})
		}
		return t
	}
	results(t, f.Apply(entry(1, app("a", "d1 read", "d1 read", "d1 write", "untallied"), app("b", "d1 read"))))
	res := results(t, f.Apply(entry(2, app("a", "d2 read", "poison read"), app("a", "d2 write", "d3 long"))))
	if res[0].Applied || !res[1].Applied {
		t.Fatalf("results %+v", res)
	}
	results(t, f.Apply(entry(3, app("a", "d2 write", "d3 read"))))

	got := func(chain, from, to string) string {
		var out []string
		var toKey []byte
		if to != "" {
			toKey = []byte(to)
		}
		_ = f.view(func(r *ReadTx) error {
			r.ChainTally([]byte(chain), []byte(from), toKey, func(k []byte, n uint64) bool {
				out = append(out, fmt.Sprintf("%s=%d", k, n))
				return true
			})
			return nil
		})
		return strings.Join(out, " ")
	}
	for _, c := range []struct{ chain, from, to, want string }{
		{"a", "", "", "a|d1/read=2 a|d1/write=1 a|d2/write=2 a|d3/read=1"},
		{"a", "a|d2", "a|d3", "a|d2/write=2"},
		{"b", "", "", "b|d1/read=1"},
		{"none", "", "", ""},
	} {
		if g := got(c.chain, c.from, c.to); g != c.want {
			t.Errorf("tally of %s [%q, %q): %s, want %s", c.chain, c.from, c.to, g, c.want)
		}
	}
}

// ChainEntriesBefore walks a chain backwards from any point.
func TestFSMChainEntriesBefore(t *testing.T) {
	f := newTestFSM(t)
	txn := &Txn{}
	for i := 1; i <= 9; i++ {
		txn.Appends = append(txn.Appends, Append{Chain: []byte("a"), Data: []byte(fmt.Sprint(i))})
	}
	results(t, f.Apply(entry(1, txn)))
	for _, c := range []struct {
		before uint64
		stop   int
		want   string
	}{{0, 0, "9 8 7 6 5 4 3 2 1"}, {5, 0, "4 3 2 1"}, {1, 0, ""}, {100, 3, "9 8 7"}, {9, 2, "8 7"}} {
		var got []string
		_ = f.view(func(r *ReadTx) error {
			r.ChainEntriesBefore([]byte("a"), c.before, func(seq uint64, _ [32]byte, data []byte) bool {
				if string(data) != fmt.Sprint(seq) {
					t.Errorf("seq %d holds %q", seq, data)
				}
				got = append(got, string(data))
				return c.stop == 0 || len(got) < c.stop
			})
			return nil
		})
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("before %d: %q, want %q", c.before, g, c.want)
		}
	}
}
