// psacheck evaluates pods against a Pod Security Standards level with the upstream
// k8s.io/pod-security-admission library, the code the apiserver's PodSecurity admission runs.
//
// Usage: psacheck restricted|baseline < pods.json   (a JSON array of Pod objects)
// Prints one JSON result per pod: {"name": ..., "allowed": bool, "reasons": [...]}.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

type result struct {
	Name    string   `json:"name"`
	Allowed bool     `json:"allowed"`
	Reasons []string `json:"reasons"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: psacheck restricted|baseline < pods.json")
		os.Exit(2)
	}
	level, err := api.ParseLevel(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var pods []corev1.Pod
	if err := json.NewDecoder(os.Stdin).Decode(&pods); err != nil {
		fmt.Fprintln(os.Stderr, "reading pods:", err)
		os.Exit(2)
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	version := api.LevelVersion{Level: level, Version: api.LatestVersion()}
	results := make([]result, 0, len(pods))
	for i := range pods {
		checked := policy.AggregateCheckResults(
			evaluator.EvaluatePod(version, &pods[i].ObjectMeta, &pods[i].Spec))
		reasons := []string{}
		if !checked.Allowed {
			reasons = append(reasons, checked.ForbiddenReason()+": "+checked.ForbiddenDetail())
		}
		results = append(results, result{pods[i].Name, checked.Allowed, reasons})
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
