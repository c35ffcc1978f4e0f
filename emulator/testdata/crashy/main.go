// Command crashy is a test extension that registers for INVOKE and exits with
// status 2 when it receives one (an extension crash during an invoke).
package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

func main() {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2020-01-01/extension"
	req, _ := http.NewRequest(http.MethodPost, base+"/register", bytes.NewReader([]byte(`{"events":["INVOKE"]}`)))
	req.Header.Set("Lambda-Extension-Name", filepath.Base(os.Args[0]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		os.Exit(1)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, base+"/event/next", nil)
	req.Header.Set("Lambda-Extension-Identifier", resp.Header.Get("Lambda-Extension-Identifier"))
	if resp, err = http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	os.Exit(2)
}
