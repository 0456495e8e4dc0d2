package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// UserKubeconfig creates the Roles and ClusterRoles of the given manifests
// (paths relative to the repository, e.g. config/rbac/speaker/role.yaml;
// other kinds in them are skipped), each renamed "test-<name>" and bound to
// a new user, and writes that user's kubeconfig into dir. A binary run with
// it has exactly the permissions the install grants, so a missing RBAC rule
// fails the suite as it would fail a user.
func (e *Env) UserKubeconfig(ctx context.Context, dir, user string, manifests ...string) (string, error) {
	for _, m := range manifests {
		objs, err := readYAML(filepath.Join(RepoRoot(), m))
		if err != nil {
			return "", err
		}
		for _, o := range objs {
			kind := o.GetKind()
			if kind != "Role" && kind != "ClusterRole" {
				continue
			}
			o.SetName("test-" + o.GetName())
			subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
			ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: o.GetName()}
			var binding client.Object = &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: o.GetNamespace(), Name: o.GetName()}, Subjects: subject, RoleRef: ref,
			}
			if kind == "ClusterRole" {
				binding = &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: o.GetName()}, Subjects: subject, RoleRef: ref}
			}
			for _, obj := range []client.Object{o, binding} {
				if err := e.Client.Create(ctx, obj); err != nil {
					return "", fmt.Errorf("creating %s %s from %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), m, err)
				}
			}
		}
	}
	u, err := e.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		return "", fmt.Errorf("adding user %s: %w", user, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("kubeconfig of %s: %w", user, err)
	}
	path := filepath.Join(dir, user+".kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// readYAML reads the objects of a multi-document YAML file.
func readYAML(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decoding %s: %w", path, err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}
