package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// InCluster is the --kubeconfig value that means "the cluster this Pod runs
// in" (its ServiceAccount token and CA).
const InCluster = "in-cluster"

// ClusterConfig names one cluster and says how to reach it.
type ClusterConfig struct {
	// ID is the cluster id put on its endpoints (topology.istio.io/cluster).
	ID string
	// Origin is where the config came from (a kubeconfig path or "in-cluster").
	Origin string
	REST   *rest.Config
}

// LoadKubeconfigs turns --kubeconfig values into clusters, in order (the
// first is the primary). A value is a kubeconfig file ("a.yaml", or
// "id=a.yaml" to choose the cluster id), a folder of kubeconfig files (each
// one cluster, in name order), or "in-cluster" (id inClusterID). Without an
// explicit id a cluster is named after its kubeconfig's current context's
// cluster. Two clusters with one id are an error.
func LoadKubeconfigs(values []string, inClusterID string) ([]ClusterConfig, error) {
	var out []ClusterConfig
	seen := map[string]string{}
	add := func(c ClusterConfig) error {
		if prev, ok := seen[c.ID]; ok {
			return fmt.Errorf("%w %q: %s and %s (name them: --kubeconfig ID=PATH)", ErrDuplicateCluster, c.ID, prev, c.Origin)
		}
		seen[c.ID] = c.Origin
		out = append(out, c)
		return nil
	}
	for _, v := range values {
		id, path, named := strings.Cut(v, "=")
		if !named {
			id, path = "", v
		}
		if path == InCluster {
			if id == "" {
				id = inClusterID
			}
			rc, err := rest.InClusterConfig()
			if err != nil {
				return nil, fmt.Errorf("%w: in-cluster: %w", ErrKubeconfig, err)
			}
			if err := add(ClusterConfig{ID: id, Origin: InCluster, REST: tune(rc)}); err != nil {
				return nil, err
			}
			continue
		}
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKubeconfig, err)
		}
		files := []string{path}
		if info.IsDir() {
			if named {
				return nil, fmt.Errorf("%w: %s is a folder; ID= applies to one file", ErrKubeconfig, path)
			}
			files, err = folderFiles(path)
			if err != nil {
				return nil, err
			}
		}
		for _, f := range files {
			c, err := loadFile(f, id)
			if err != nil {
				return nil, err
			}
			if err := add(c); err != nil {
				return nil, err
			}
		}
	}
	if len(out) == 0 {
		return nil, ErrNoClusters
	}
	return out, nil
}

// folderFiles lists the visible regular files of a folder, sorted.
func folderFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKubeconfig, err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files = append(files, filepath.Join(dir, e.Name()))
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: folder %s holds no kubeconfig", ErrKubeconfig, dir)
	}
	return files, nil
}

func loadFile(path, id string) (ClusterConfig, error) {
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return ClusterConfig{}, fmt.Errorf("%w: %s: %w", ErrKubeconfig, path, err)
	}
	cc := clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{})
	rc, err := cc.ClientConfig()
	if err != nil {
		return ClusterConfig{}, fmt.Errorf("%w: %s: %w", ErrKubeconfig, path, err)
	}
	if id == "" {
		if ctx := raw.Contexts[raw.CurrentContext]; ctx != nil && ctx.Cluster != "" {
			id = ctx.Cluster
		} else {
			id = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		}
	}
	return ClusterConfig{ID: id, Origin: path, REST: tune(rc)}, nil
}

// tune raises client-go's default rate limits (5 QPS would make the first
// list of a large cluster slow) and names Rosen in the API server's logs.
func tune(rc *rest.Config) *rest.Config {
	rc = rest.CopyConfig(rc)
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = "rosen"
	return rc
}
