package main

import (
	"encoding/json"
	"testing"
)

// /json64k is valid JSON of exactly 64 KiB, for the compression scenarios.
func TestJSONDocument(t *testing.T) {
	for _, n := range []int{64, 1000, 64 << 10} {
		doc := jsonDocument(n)
		var v any
		if err := json.Unmarshal(doc, &v); err != nil || len(doc) != n {
			t.Errorf("jsonDocument(%d): %d bytes, %v", n, len(doc), err)
		}
	}
}
