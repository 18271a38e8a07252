// admitfloor is the webhook benchmark's floor: an admission webhook that allows every request
// and changes nothing, with nothing else in its path (Go's own HTTPS server and JSON). A pod
// create through it costs what calling any webhook costs the API server; the other arms are
// compared with it (bench/webhook.py).
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
)

// review holds only what the answer needs: the request's uid.
type review struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    *struct {
		UID string `json:"uid"`
	} `json:"request"`
}

type answer struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Response   response `json:"response"`
}

type response struct {
	UID     string `json:"uid"`
	Allowed bool   `json:"allowed"`
}

func admit(w http.ResponseWriter, r *http.Request) {
	var in review
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	out := answer{APIVersion: in.APIVersion, Kind: in.Kind, Response: response{UID: in.Request.UID, Allowed: true}}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(out); err != nil {
		log.Printf("answer not sent: %v", err)
	}
}

func main() {
	address := flag.String("address", "127.0.0.1:0", "host:port to listen on (loopback)")
	cert := flag.String("cert", "", "the serving certificate (PEM)")
	key := flag.String("key", "", "its private key (PEM)")
	flag.Parse()
	http.HandleFunc("/", admit)
	log.Printf("admitting on https://%s", *address)
	log.Fatal(http.ListenAndServeTLS(*address, *cert, *key, nil))
}
