package charttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v4/pkg/action"
	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "../strata"
	repoRoot    = "../../.."
	namespace   = "observability"
	releaseName = "demo"
	// kubeVersion is the cluster version the chart is rendered for (helm's own default is older than
	// the chart's minimum).
	kubeVersion = "v1.33.0"
)

// valueSets are the chart's defaults and every example values file.
func valueSets(t *testing.T) map[string]map[string]any {
	t.Helper()
	sets := map[string]map[string]any{"default": {}}
	files, err := filepath.Glob(filepath.Join(chartDir, "examples", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "the chart has example values files")
	for _, f := range files {
		vals, err := chartcommon.ReadValuesFile(f)
		require.NoError(t, err, f)
		sets[filepath.Base(f)] = vals
	}
	return sets
}

// TestChart lints and renders the chart with each value set, decodes every manifest strictly with the
// Kubernetes API types, and runs `strata -config.verify` with every rendered Strata container's
// arguments, so a flag the chart uses and Strata no longer has fails here.
func TestChart(t *testing.T) {
	for name, vals := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			lint(t, vals)
			objects := render(t, name, vals)
			checkWorkloads(t, objects)
			verified := 0
			forEachStrataContainer(t, objects, func(source string, cmd *exec.Cmd) {
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s: %s\n%s", source, strings.Join(cmd.Args, " "), out)
				require.Contains(t, string(out), "config OK")
				verified++
			})
			require.NotZero(t, verified, "no Strata container was rendered")
			checkHooks(t, objects)
		})
	}
}

// checkHooks parses every stratatool command of a preStop hook as the image's stratatool would (flags
// and command, with --help so that nothing is sent): a renamed stratatool flag fails here too.
func checkHooks(t *testing.T, objects []object) {
	t.Helper()
	for _, w := range workloads(objects) {
		for _, c := range w.pod.Spec.Containers {
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
				continue
			}
			hook := c.Lifecycle.PreStop.Exec
			require.NotNil(t, hook, "%s: preStop hooks are exec hooks", w.source)
			require.Equal(t, "/bin/stratatool", hook.Command[0], "%s: the image has /bin/strata and /bin/stratatool", w.source)
			cmd := exec.Command(stratatoolBin, append(hook.Command[1:], "--help")...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s preStop: stratatool %s\n%s", w.source, strings.Join(hook.Command[1:], " "), out)
			require.Contains(t, string(out), "prepare-shutdown")
		}
	}
}

// TestChart_AFlagStrataDoesNotKnowFailsVerification shows that the check above catches a flag the chart
// renders and Strata does not have, as after a rename.
func TestChart_AFlagStrataDoesNotKnowFailsVerification(t *testing.T) {
	objects := render(t, "renamed-flag", map[string]any{
		"mode":     "microservices",
		"ingester": map[string]any{"extraArgs": map[string]any{"ingester.renamed-flag": "1"}},
	})
	failed := 0
	forEachStrataContainer(t, objects, func(source string, cmd *exec.Cmd) {
		out, err := cmd.CombinedOutput()
		if !strings.Contains(source, "ingester") {
			require.NoError(t, err, "%s: %s", source, out)
			return
		}
		require.Error(t, err, source)
		require.Contains(t, string(out), "flag provided but not defined: -ingester.renamed-flag")
		failed++
	})
	require.Equal(t, 1, failed, "the ingester StatefulSet's container fails verification")
}

// strataBin and stratatoolBin are built from this repository by TestMain.
var strataBin, stratatoolBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "charttest")
	if err != nil {
		panic(err)
	}
	strataBin, stratatoolBin = filepath.Join(dir, "strata"), filepath.Join(dir, "stratatool")
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/strata", "./cmd/stratatool")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/strata ./cmd/stratatool: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func lint(t *testing.T, vals map[string]any) {
	t.Helper()
	l := action.NewLint()
	l.Namespace = namespace
	l.KubeVersion = parseKubeVersion(t)
	result := l.Run([]string{chartDir}, vals)
	require.Empty(t, result.Errors, "helm lint errors")
	for _, m := range result.Messages {
		require.Less(t, m.Severity, support.WarningSev, "helm lint: %s", m.Error())
	}
}

// template renders the chart as `helm template` does: an install's dry run without a cluster.
func template(t *testing.T, vals map[string]any) (any, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	require.NoError(t, err)
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.KubeVersion = parseKubeVersion(t)
	return install.Run(chrt, vals)
}

func parseKubeVersion(t *testing.T) *chartcommon.KubeVersion {
	t.Helper()
	v, err := chartcommon.ParseKubeVersion(kubeVersion)
	require.NoError(t, err)
	return v
}

// object is one rendered manifest, decoded into its Kubernetes type.
type object struct {
	source string
	kind   string
	name   string
	obj    any
}

// decoder refuses unknown and duplicate fields, as `kubectl apply --validate=strict` does.
var decoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// render runs helm template. With STRATA_CHART_DUMP=DIR the manifests are also written to DIR/<name>,
// to read what the chart renders.
func render(t *testing.T, name string, vals map[string]any) []object {
	t.Helper()
	rel, err := template(t, vals)
	require.NoError(t, err, "helm template")
	manifest := rel.(*release.Release).Manifest
	if dir := os.Getenv("STRATA_CHART_DUMP"); dir != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(manifest), 0o600))
	}
	docs := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))

	var objects []object
	for _, k := range keys {
		doc := docs[k]
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &head), doc)
		source := fmt.Sprintf("%s %s", head.Kind, head.Metadata.Name)
		if head.Kind == "ServiceMonitor" {
			objects = append(objects, object{source, head.Kind, head.Metadata.Name, decodeServiceMonitor(t, doc)})
			continue
		}
		obj, gvk, err := decoder.Decode([]byte(doc), nil, nil)
		require.NoError(t, err, "%s does not decode strictly as a Kubernetes object:\n%s", source, doc)
		require.Equal(t, head.APIVersion, gvk.GroupVersion().String())
		objects = append(objects, object{source, gvk.Kind, head.Metadata.Name, obj})
	}
	require.NotEmpty(t, objects)
	return objects
}

// serviceMonitor is the part of the Prometheus Operator's monitoring.coreos.com/v1 ServiceMonitor the
// chart renders; any other field is refused.
type serviceMonitor struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   metav1ObjectMeta   `json:"metadata"`
	Spec       serviceMonitorSpec `json:"spec"`
}

type metav1ObjectMeta struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

type serviceMonitorSpec struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	NamespaceSelector struct {
		MatchNames []string `json:"matchNames"`
	} `json:"namespaceSelector"`
	Endpoints []struct {
		Port          string          `json:"port"`
		Path          string          `json:"path"`
		Scheme        string          `json:"scheme"`
		Interval      string          `json:"interval"`
		ScrapeTimeout string          `json:"scrapeTimeout"`
		TLSConfig     json.RawMessage `json:"tlsConfig"`
		BasicAuth     *struct {
			Username secretKeySelector `json:"username"`
			Password secretKeySelector `json:"password"`
		} `json:"basicAuth"`
		Authorization *struct {
			Type        string            `json:"type"`
			Credentials secretKeySelector `json:"credentials"`
		} `json:"authorization"`
	} `json:"endpoints"`
}

type secretKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

func decodeServiceMonitor(t *testing.T, doc string) serviceMonitor {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(doc))
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sm serviceMonitor
	require.NoError(t, dec.Decode(&sm), "ServiceMonitor:\n%s", doc)
	require.Equal(t, "monitoring.coreos.com/v1", sm.APIVersion)
	require.NotEmpty(t, sm.Spec.Selector.MatchLabels)
	require.NotEmpty(t, sm.Spec.Endpoints)
	for _, e := range sm.Spec.Endpoints {
		require.Equal(t, "http", e.Port)
		require.Equal(t, "/metrics", e.Path)
		require.Contains(t, []string{"http", "https"}, e.Scheme)
	}
	return sm
}

// workload is a Deployment's or StatefulSet's pod template and selector.
type workload struct {
	source   string
	selector map[string]string
	pod      corev1.PodTemplateSpec
	claims   []corev1.PersistentVolumeClaim
	// updateStrategy is a StatefulSet's.
	updateStrategy appsv1.StatefulSetUpdateStrategyType
}

func workloads(objects []object) []workload {
	var out []workload
	for _, o := range objects {
		switch w := o.obj.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{o.source, w.Spec.Selector.MatchLabels, w.Spec.Template, nil, ""})
		case *appsv1.StatefulSet:
			out = append(out, workload{o.source, w.Spec.Selector.MatchLabels, w.Spec.Template, w.Spec.VolumeClaimTemplates, w.Spec.UpdateStrategy.Type})
		}
	}
	return out
}

// checkWorkloads checks what the chart promises of every pod: its selector matches its labels, it is
// covered by a PodDisruptionBudget, runs as non-root, and is ready only once /ready says so.
func checkWorkloads(t *testing.T, objects []object) {
	t.Helper()
	var budgets []*policyv1.PodDisruptionBudget
	for _, o := range objects {
		if pdb, ok := o.obj.(*policyv1.PodDisruptionBudget); ok {
			budgets = append(budgets, pdb)
		}
	}
	ws := workloads(objects)
	require.NotEmpty(t, ws)
	for _, w := range ws {
		podLabels := labels.Set(w.pod.Labels)
		require.True(t, labels.SelectorFromSet(w.selector).Matches(podLabels), "%s: selector does not match its pods", w.source)
		covered := false
		for _, pdb := range budgets {
			if labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(podLabels) {
				covered = true
			}
		}
		require.True(t, covered, "%s: no PodDisruptionBudget covers its pods", w.source)
		if zone := w.pod.Labels["strata.io/zone"]; zone != "" {
			// A zone's pods say which zone they are in, and zones are rolled one by one (OnDelete).
			require.Equal(t, appsv1.OnDeleteStatefulSetStrategyType, w.updateStrategy, w.source)
			require.True(t, slices.ContainsFunc(w.pod.Spec.Containers[0].Args, func(a string) bool {
				return strings.HasSuffix(a, "-availability-zone="+zone)
			}), "%s: started with its zone", w.source)
		}
		sc := w.pod.Spec.SecurityContext
		require.NotNil(t, sc, w.source)
		require.True(t, sc.RunAsNonRoot != nil && *sc.RunAsNonRoot, "%s runs as non-root", w.source)
		for _, c := range w.pod.Spec.Containers {
			require.NotNil(t, c.ReadinessProbe, "%s/%s has a readiness probe", w.source, c.Name)
			require.NotNil(t, c.ReadinessProbe.HTTPGet, w.source)
			require.Equal(t, "/ready", c.ReadinessProbe.HTTPGet.Path, w.source)
		}
	}
}

// forEachStrataContainer hands fn a `strata -config.verify` command with the arguments of each Strata
// container: files the container would read from ConfigMaps and Secrets of the release are written to a
// temporary directory and the paths in the arguments mapped there; $(VAR) references are expanded from
// the container's env, as the kubelet does.
func forEachStrataContainer(t *testing.T, objects []object, fn func(source string, cmd *exec.Cmd)) {
	t.Helper()
	configMaps := map[string]map[string]string{}
	secrets := map[string]map[string]string{}
	for _, o := range objects {
		switch v := o.obj.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Name] = v.Data
		case *corev1.Secret:
			data := map[string]string{}
			for k, b := range v.Data {
				data[k] = string(b)
			}
			for k, s := range v.StringData {
				data[k] = s
			}
			secrets[v.Name] = data
		}
	}
	for _, w := range workloads(objects) {
		for _, c := range w.pod.Spec.Containers {
			if !strings.Contains(c.Image, "strata") {
				continue
			}
			root := t.TempDir()
			volumes := w.pod.Spec.Volumes
			for _, claim := range w.claims {
				volumes = append(volumes, corev1.Volume{Name: claim.Name})
			}
			mounts := mountVolumes(t, root, volumes, c.VolumeMounts, configMaps, secrets)
			env := containerEnv(c.Env, secrets)
			args := make([]string, 0, len(c.Args)+1)
			for _, a := range c.Args {
				args = append(args, mapPaths(expandKubeVars(a, env), mounts))
			}
			args = append(args, "-config.verify")
			cmd := exec.Command(strataBin, args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), envList(env)...)
			fn(w.source+"/"+c.Name, cmd)
		}
	}
}

// mountVolumes writes each mounted ConfigMap and Secret volume's files under root and returns the
// container's mount paths, each mapped to its directory under root.
func mountVolumes(t *testing.T, root string, volumes []corev1.Volume, mounts []corev1.VolumeMount, configMaps, secrets map[string]map[string]string) map[string]string {
	t.Helper()
	byName := map[string]corev1.Volume{}
	for _, v := range volumes {
		byName[v.Name] = v
	}
	mapped := map[string]string{}
	for _, m := range mounts {
		v, ok := byName[m.Name]
		require.True(t, ok, "volume mount %s names no volume of the pod", m.Name)
		dir := filepath.Join(root, "mounts", m.Name)
		require.NoError(t, os.MkdirAll(dir, 0o700))
		mapped[m.MountPath] = dir
		var files map[string]string
		var items []corev1.KeyToPath
		switch {
		case v.ConfigMap != nil:
			data, ok := configMaps[v.ConfigMap.Name]
			require.True(t, ok, "ConfigMap %s is not part of the release", v.ConfigMap.Name)
			files, items = data, v.ConfigMap.Items
		case v.Secret != nil:
			// A Secret the release does not create (an existingSecret) is left empty: verification reads
			// no certificate or key.
			files, items = secrets[v.Secret.SecretName], v.Secret.Items
		}
		if files == nil {
			continue
		}
		if items == nil {
			for k := range files {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			content, ok := files[it.Key]
			require.True(t, ok, "volume %s projects key %s, which its source lacks", m.Name, it.Key)
			require.NoError(t, os.WriteFile(filepath.Join(dir, it.Path), []byte(content), 0o600))
		}
	}
	return mapped
}

// mapPaths rewrites a flag value that lies under a mount path to the same file under its directory.
func mapPaths(arg string, mounts map[string]string) string {
	name, value, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	best := ""
	for mountPath := range mounts {
		if (value == mountPath || strings.HasPrefix(value, mountPath+"/")) && len(mountPath) > len(best) {
			best = mountPath
		}
	}
	if best == "" {
		return arg
	}
	return name + "=" + mounts[best] + strings.TrimPrefix(value, best)
}

// containerEnv gives each variable its value: one from a Secret of the release gets the Secret's value,
// one from elsewhere (an existingSecret, a field) a stand-in.
func containerEnv(env []corev1.EnvVar, secrets map[string]map[string]string) map[string]string {
	out := map[string]string{}
	for _, e := range env {
		if e.ValueFrom != nil {
			out[e.Name] = "from-" + e.Name
			if ref := e.ValueFrom.FieldRef; ref != nil && ref.FieldPath == "status.podIP" {
				out[e.Name] = "10.1.2.3"
			}
			if ref := e.ValueFrom.SecretKeyRef; ref != nil {
				if v, ok := secrets[ref.Name][ref.Key]; ok {
					out[e.Name] = v
				}
			}
			continue
		}
		out[e.Name] = expandKubeVars(e.Value, out)
	}
	return out
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// expandKubeVars replaces $(VAR) with the variable's value, as the kubelet does in args; an unknown
// variable stays as written.
func expandKubeVars(s string, env map[string]string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "$(")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], ")")
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[i+2 : i+j]
		b.WriteString(s[:i])
		if v, ok := env[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
}

// TestDecoder_RefusesUnknownFields shows that the manifests' decoding is strict: a misspelled field, as a
// template typo would render, is an error rather than silently dropped.
func TestDecoder_RefusesUnknownFields(t *testing.T) {
	for name, doc := range map[string]string{
		"misspelled field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n",
		"duplicate field":  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  type: ClusterIP\n  type: ClusterIP\n",
		"wrong type":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: [1]}\n",
	} {
		_, _, err := decoder.Decode([]byte(doc), nil, nil)
		require.Error(t, err, name)
	}
	_, _, err := decoder.Decode([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 2\n"), nil, nil)
	require.NoError(t, err)
}

// TestChart_RefusesValuesThatCannotWork: values that no Strata process could run with fail at
// `helm template` with a message that says what to change.
func TestChart_RefusesValuesThatCannotWork(t *testing.T) {
	tests := []struct {
		name string
		vals map[string]any
		want string
	}{
		{"unknown mode", map[string]any{"mode": "cluster"}, `mode "cluster"`},
		{"unknown backend", map[string]any{"storage": map[string]any{"backend": "ftp"}}, `storage.backend "ftp"`},
		{"replicas sharing no bucket", map[string]any{"singleBinary": map[string]any{"replicas": 3}}, "needs object storage"},
		{"basic auth without credentials", map[string]any{"auth": map[string]any{"type": "basic"}}, "auth.type basic needs auth.credentials"},
		{"mtls without TLS", map[string]any{"auth": map[string]any{"type": "mtls"}}, "auth.type mtls needs tls.enabled"},
		{"TLS without a certificate", map[string]any{"tls": map[string]any{"enabled": true}}, "tls.enabled needs tls.existingSecret"},
		{"fewer ingesters than copies", map[string]any{"mode": "microservices", "ingester": map[string]any{"replicas": 2}}, "replicationFactor 3 needs at least 3 ingesters"},
		{"fewer zones than copies", map[string]any{"mode": "microservices", "zoneAwareReplication": map[string]any{"enabled": true, "zones": []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}}}}, "needs at least 3 zones"},
		{"S3 key without its secret", map[string]any{"mode": "microservices", "storage": map[string]any{"backend": "s3", "s3": map[string]any{"bucketName": "b", "accessKeyId": "AK"}}}, "secretAccessKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := template(t, tt.vals)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
