package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argodiff "github.com/argoproj/argo-cd/v3/util/argo/diff"
	"github.com/argoproj/argo-cd/v3/util/argo/normalizers"
)

type diffResult struct {
	Kind           string         `json:"kind"`
	Name           string         `json:"name"`
	Modified       bool           `json:"modified"`
	NormalizedLive map[string]any `json:"normalizedLive,omitempty"`
	PredictedLive  map[string]any `json:"predictedLive,omitempty"`
}

// runDiff compares desired and live objects with argo.StateDiffs, configured the way the application controller
// configures it for an Application without Server-Side Diff (controller/state.go): the Application's ignoreDifferences,
// argocd-cm's resource overrides and compare options, its tracking method, no cache.
func runDiff(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	appPath := fs.String("application", "", "Application manifest whose spec.ignoreDifferences and sync options apply")
	cmPath := fs.String("argocd-cm", "", "argocd-cm ConfigMap manifest (default: an empty one, Argo CD's defaults)")
	desiredPath := fs.String("desired", "", "desired objects (a List), as rendered from Git")
	livePath := fs.String("live", "", "live objects (a List), as read from the cluster; matched to desired by kind and name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *appPath == "" || *desiredPath == "" || *livePath == "" {
		return errors.New("diff needs --application, --desired and --live")
	}
	var app v1alpha1.Application
	raw, err := os.ReadFile(*appPath)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(raw, &app); err != nil {
		return fmt.Errorf("%s: %w", *appPath, err)
	}
	mgr, cancel, err := settingsFor(*cmPath, "", "")
	if err != nil {
		return err
	}
	defer cancel()
	overrides, err := mgr.GetResourceOverrides()
	if err != nil {
		return fmt.Errorf("argocd-cm: %w", err)
	}
	compare, err := mgr.GetResourceCompareOptions()
	if err != nil {
		return fmt.Errorf("argocd-cm: %w", err)
	}
	labelKey, err := mgr.GetAppInstanceLabelKey()
	if err != nil {
		return err
	}
	tracking, err := mgr.GetTrackingMethod()
	if err != nil {
		return err
	}
	ignores := app.Spec.IgnoreDifferences
	if ignores == nil {
		ignores = []v1alpha1.ResourceIgnoreDifferences{}
	}
	builder := argodiff.NewDiffConfigBuilder().
		WithDiffSettings(ignores, overrides, compare.IgnoreAggregatedRoles, normalizers.IgnoreNormalizerOpts{JQExecutionTimeout: time.Second}).
		WithTracking(labelKey, tracking).
		WithNoCache().
		WithManager(common.ArgoCDSSAManager)
	if app.Spec.SyncPolicy != nil && app.Spec.SyncPolicy.SyncOptions.HasOption("ServerSideApply=true") {
		builder.WithStructuredMergeDiff(true)
	}
	config, err := builder.Build()
	if err != nil {
		return err
	}
	desired, err := readObjects(*desiredPath)
	if err != nil {
		return err
	}
	live, err := readObjects(*livePath)
	if err != nil {
		return err
	}
	lives := make([]*unstructured.Unstructured, len(desired))
	for i, d := range desired {
		for _, l := range live {
			if l.GroupVersionKind().GroupKind() == d.GroupVersionKind().GroupKind() && l.GetName() == d.GetName() && l.GetNamespace() == d.GetNamespace() {
				lives[i] = l
			}
		}
	}
	results, err := argodiff.StateDiffs(lives, desired, config)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	for i, r := range results.Diffs {
		res := diffResult{Kind: desired[i].GetKind(), Name: desired[i].GetName(), Modified: r.Modified}
		if r.Modified {
			_ = json.Unmarshal(r.NormalizedLive, &res.NormalizedLive)
			_ = json.Unmarshal(r.PredictedLive, &res.PredictedLive)
		}
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	return nil
}
