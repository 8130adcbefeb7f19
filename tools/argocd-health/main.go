// argocd-health runs Argo CD's own code on Lanyard's Argo CD configuration (docs/gitops.md, docs/adr/0800), so tests
// check what Argo CD does rather than a re-implementation of it.
//
//	argocd-health health (--argocd-cm FILE | --script FILE --group-kind GROUP/Kind) [--object FILE|-]
//	argocd-health diff --application FILE [--argocd-cm FILE] --desired FILE --live FILE
//
// health: argocd-cm goes through Argo CD's settings manager (which turns `resource.customizations.health.<group>_<Kind>`
// keys into resource overrides), and each object through gitops-engine's health.GetResourceHealth with util/lua's
// overrides, as controller/health.go calls it. One JSON line per object: {"kind","name","status","message"}; status is
// "" when Argo CD has no assessment for the kind.
//
// diff: desired and live objects go through argo.StateDiffs configured as the application controller configures it
// (diff.go). One JSON line per desired object: {"kind","name","modified"} and, when modified, both normalized states.
//
// Objects are JSON or YAML, a single object or a List.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/argoproj/gitops-engine/pkg/health"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
)

const namespace = "argocd"

func main() {
	// Argo CD's packages log their informer start-up at info level; only warnings and errors matter here.
	log.SetLevel(log.WarnLevel)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health health|diff [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "health":
		err = runHealth(os.Args[2:], os.Stdout)
	case "diff":
		err = runDiff(os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q (health or diff)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-health:", err)
		os.Exit(2)
	}
}

type healthResult struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func runHealth(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	cmPath := fs.String("argocd-cm", "", "argocd-cm ConfigMap manifest (YAML or JSON)")
	scriptPath := fs.String("script", "", "a health script, evaluated as resource.customizations.health.<group>_<Kind>")
	groupKind := fs.String("group-kind", "", "group/Kind the --script is registered for, e.g. lanyard.dev/Stage")
	objectPath := fs.String("object", "-", "object or List to assess (YAML or JSON); - reads standard input")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*cmPath == "") == (*scriptPath == "") {
		return errors.New("give exactly one of --argocd-cm or --script")
	}
	mgr, cancel, err := settingsFor(*cmPath, *scriptPath, *groupKind)
	if err != nil {
		return err
	}
	defer cancel()
	overrides, err := mgr.GetResourceOverrides()
	if err != nil {
		return fmt.Errorf("argocd-cm: %w", err)
	}
	objects, err := readObjects(*objectPath)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	for _, obj := range objects {
		r := healthResult{Kind: obj.GetKind(), Name: obj.GetName()}
		status, err := health.GetResourceHealth(obj, lua.ResourceHealthOverrides(overrides))
		switch {
		case err != nil:
			// The controller logs the error and shows the resource without a health: a broken script is an error here.
			return fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
		case status != nil:
			r.Status, r.Message = string(status.Status), status.Message
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// settingsFor returns Argo CD's settings manager over one argocd-cm: read from cmPath, or made of one health script,
// or empty (Argo CD's defaults). The manager reads it through an informer, as in Argo CD, from a fake clientset.
func settingsFor(cmPath, scriptPath, groupKind string) (*settings.SettingsManager, context.CancelFunc, error) {
	var cm corev1.ConfigMap
	switch {
	case cmPath != "":
		raw, err := os.ReadFile(cmPath)
		if err != nil {
			return nil, nil, err
		}
		if err := yaml.Unmarshal(raw, &cm); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cmPath, err)
		}
		if cm.Name != common.ArgoCDConfigMapName {
			return nil, nil, fmt.Errorf("%s: metadata.name is %q; Argo CD reads only %q", cmPath, cm.Name, common.ArgoCDConfigMapName)
		}
	case scriptPath != "":
		group, kind, ok := strings.Cut(groupKind, "/")
		if !ok || kind == "" {
			return nil, nil, errors.New("--group-kind must be group/Kind (for example lanyard.dev/Stage)")
		}
		script, err := os.ReadFile(scriptPath)
		if err != nil {
			return nil, nil, err
		}
		cm.Data = map[string]string{fmt.Sprintf("resource.customizations.health.%s_%s", group, kind): string(script)}
	}
	cm.Name = common.ArgoCDConfigMapName
	cm.Namespace = namespace
	// The settings manager only sees ConfigMaps labelled as part of Argo CD, as a real install labels them.
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	cm.Labels["app.kubernetes.io/part-of"] = "argocd"
	ctx, cancel := context.WithCancel(context.Background())
	return settings.NewSettingsManager(ctx, fake.NewClientset(&cm), namespace), cancel, nil
}

func readObjects(path string) ([]*unstructured.Unstructured, error) {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	var obj unstructured.Unstructured
	if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !obj.IsList() {
		return []*unstructured.Unstructured{&obj}, nil
	}
	list, err := obj.ToList()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	objects := make([]*unstructured.Unstructured, 0, len(list.Items))
	for i := range list.Items {
		objects = append(objects, &list.Items[i])
	}
	return objects, nil
}
