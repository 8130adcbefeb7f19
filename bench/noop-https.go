// A no-op HTTPS server for bench/webhook.bench.ts: reads the whole body and answers a fixed AdmissionReview.
// The bench builds it into ~/.cache/lanyard/bench with the machine's Go; the binary is never committed.
// Usage: noop-https CERT KEY  (prints the port it listens on, then serves)
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

var answer = []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":true}}`)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Printf("{\"port\":%d}\n", ln.Addr().(*net.TCPAddr).Port)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	if err := http.ServeTLS(ln, handler, os.Args[1], os.Args[2]); err != nil {
		panic(err)
	}
}
