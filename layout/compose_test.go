package layout

import (
	"os"
	"os/exec"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v4"
)

// The production-shaped stack: every service this repository promises, every image
// pinned to a version, and the file valid for Compose where a Compose is installed
// (docker-compose, or the docker compose plugin; no Docker engine is needed).
func TestTheComposeStackIsCompleteAndPinned(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Image string `yaml:"image"`
			Build any    `yaml:"build"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"postgres", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "setup", "objectstore", "worker", "web", "fleet"} {
		if _, ok := file.Services[name]; !ok {
			t.Errorf("docker-compose.yml has no %s service", name)
		}
	}
	pinned := regexp.MustCompile(`:[0-9]+\.[0-9]+(\.[0-9]+)?([-.][A-Za-z0-9.-]+)?$`)
	for name, s := range file.Services {
		if s.Build == nil && !pinned.MatchString(s.Image) {
			t.Errorf("service %s: image %q is not pinned to a version", name, s.Image)
		}
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(string(dockerfile), -1) {
		if !pinned.MatchString(m[1]) {
			t.Errorf("Dockerfile: base image %q is not pinned to a version", m[1])
		}
	}

	var check *exec.Cmd
	if _, err := exec.LookPath("docker-compose"); err == nil {
		check = exec.Command("docker-compose", "config", "-q")
	} else if exec.Command("docker", "compose", "version").Run() == nil {
		check = exec.Command("docker", "compose", "config", "-q")
	} else {
		t.Log("no Compose here to validate docker-compose.yml with; checked its services and versions only")
		return
	}
	check.Dir = ".."
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", check.Args, err, out)
	}
}
