//! The CI examples of `examples/ci/` (GitHub Actions matrix, GitLab CI,
//! Kubernetes Job, Slurm batch script), their commands run as each service
//! would run them, against a local docker-registry holding the shared layer
//! cache: every job starts from an empty local cache, and the later jobs
//! reuse the layers the earlier ones built.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::registry::Registry;
use crate::util::{TestDir, assert_success, repo_root, run, text, yaml};

fn example(name: &str) -> PathBuf {
    repo_root().join("examples/ci").join(name)
}

/// Two locked recipes under `images/` that share a source package
/// (`hello-bin`), from the standard test repository.
struct Fleet {
    t: TestDir,
    registry: Registry,
    _repo: crate::util::apt::AptRepo,
}

impl Fleet {
    fn new() -> Fleet {
        let t = TestDir::new();
        let registry = Registry::start();
        let (repo, url) = crate::packages::standard_repo(&t);
        for (name, install) in [("analysis", "\"hello-bin\""), ("notebook", "\"app\"")] {
            let recipe = t.write(
                &format!("images/{name}/image.kdl"),
                &format!(
                    "name \"{name}\"\nversion \"1\"\nbase \"scratch\"\nplatform \"linux/amd64\"\n\
                     debian \"stable\" mirror=\"{url}\" updates=#false security=#false keyring=\"../../image/keys/repo.gpg\" {{\n    install {install}\n}}\n"
                ),
            );
            let mut lock = t.strata();
            lock.env("STRATA_CACHE", t.join("lock-cache"))
                .arg("lock")
                .arg(&recipe);
            run(&mut lock);
        }
        Fleet {
            t,
            registry,
            _repo: repo,
        }
    }

    fn cache_repo(&self) -> String {
        format!("{}/research/strata-cache", self.registry.addr)
    }

    /// Runs `script` with bash in `dir`, with only `env` and a PATH that
    /// finds this strata first: what a job has.
    fn job(&self, dir: &Path, script: &str, env: &BTreeMap<String, String>) -> Output {
        let strata = PathBuf::from(env!("CARGO_BIN_EXE_strata"));
        let path = format!("{}:/usr/bin:/bin", strata.parent().unwrap().display());
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.t.join("home"))
            .envs(env)
            .output()
            .unwrap();
        assert_success(&output, script);
        output
    }

    /// The layers a job's build printed, by how they were had.
    fn layer_states(output: &Output) -> Vec<String> {
        text(&output.stderr)
            .lines()
            .filter(|l| l.starts_with("  layer "))
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
            .collect()
    }

    /// The repository's tags, without the referrers tags of SBOMs
    /// (`sha256-…`).
    fn tags(&self, repository: &str) -> Vec<String> {
        let out = run(Command::new("curl").args([
            "-fsS",
            &format!("http://{}/v2/{repository}/tags/list", self.registry.addr),
        ]));
        let list: Value = serde_json::from_str(&out).unwrap();
        list["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .filter(|t| !t.starts_with("sha256-"))
            .collect()
    }
}

#[test]
fn the_ci_examples_build_and_share_layers_through_the_registry() {
    let fleet = Fleet::new();
    let t = &fleet.t;
    let env = |pairs: &[(&str, String)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };

    // GitHub Actions: the matrix's amd64 cells, one job per recipe, each
    // with an empty local cache (a fresh runner).
    let workflow = yaml(&example("github-actions-fleet.yml"));
    let job = &workflow["jobs"]["image"];
    let matrix = &job["strategy"]["matrix"];
    assert_eq!(
        matrix["platform"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    let inputs: Vec<&str> = job["env"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        inputs,
        [
            "IMAGE",
            "PLATFORM",
            "RECIPE",
            "STRATA_CACHE_REPO",
            "STRATA_CREDS"
        ],
        "the test gives the job every input it reads"
    );
    let steps: Vec<&str> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] != "Install strata")
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert_eq!(steps.len(), 1, "{steps:?}");
    let mut github = Vec::new();
    for recipe in matrix["recipe"].as_array().unwrap() {
        let recipe = recipe.as_str().unwrap();
        let runner = t.join(&format!("runner-{recipe}"));
        fs::create_dir_all(&runner).unwrap();
        let summary = runner.join("summary.md");
        let output = fleet.job(
            t.path(),
            steps[0],
            &env(&[
                ("RECIPE", format!("images/{recipe}/image.kdl")),
                ("PLATFORM", "linux/amd64".to_owned()),
                (
                    "IMAGE",
                    format!("{}/research/{recipe}", fleet.registry.addr),
                ),
                ("STRATA_CACHE_REPO", fleet.cache_repo()),
                ("STRATA_CREDS", "ci-user:ci-token".to_owned()),
                ("STRATA_CACHE", runner.join("cache").display().to_string()),
                ("GITHUB_SHA", "0123456789abcdef0123".to_owned()),
                ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
            ]),
        );
        assert!(
            fs::read_to_string(&summary)
                .unwrap()
                .contains("(linux/amd64)")
        );
        assert_eq!(
            fleet.tags(&format!("research/{recipe}")),
            ["0123456789ab-amd64"]
        );
        github.push(Fleet::layer_states(&output));
    }
    // The notebook image needs hello-bin too: its layer came from the
    // analysis job, through the registry.
    assert!(github[0].iter().all(|s| s == "built"), "{github:?}");
    assert!(github[1].iter().any(|s| s == "fetched"), "{github:?}");

    // GitLab CI: the same recipe as the first matrix job, in a fresh job of
    // a project whose registry path is the fleet's (its cache repository is
    // then the same).
    let gitlab = yaml(&example("gitlab-ci.yml"));
    let job = &gitlab["build-image"];
    let project = t.join("images/analysis");
    let mut variables = env(&[
        (
            "CI_REGISTRY_IMAGE",
            format!("{}/research", fleet.registry.addr),
        ),
        ("CI_PROJECT_DIR", project.display().to_string()),
        ("CI_COMMIT_SHORT_SHA", "89abcdef".to_owned()),
        ("CI_REGISTRY_USER", "gitlab-ci-token".to_owned()),
        ("CI_REGISTRY_PASSWORD", "secret".to_owned()),
    ]);
    for (name, value) in job["variables"].as_object().unwrap() {
        // GitLab expands `$VAR` in variables as the shell would.
        let expanded = run(Command::new("bash")
            .args(["-c", &format!("printf %s \"{}\"", value.as_str().unwrap())])
            .env_clear()
            .envs(&variables));
        variables.insert(name.clone(), expanded);
    }
    let script: Vec<&str> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let output = fleet.job(&project, &script.join("\n"), &variables);
    assert_eq!(fleet.tags("research"), ["89abcdef"]);
    let states = Fleet::layer_states(&output);
    assert!(
        !states.is_empty() && states.iter().all(|s| s == "fetched"),
        "a fresh job compresses nothing the fleet built: {states:?}\n{}",
        text(&output.stderr)
    );
    assert!(project.join("digest.txt").exists());
    fs::remove_dir_all(project.join(".strata-cache")).unwrap();
    fs::remove_dir_all(project.join("out")).unwrap();
    fs::remove_file(project.join("digest.txt")).unwrap();

    // Kubernetes: the container's arguments and environment, with the
    // volumes where the Job mounts them.
    let manifest = yaml(&example("kubernetes-job.yaml"));
    let pod = &manifest["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let scratch = t.join("k8s-scratch");
    fs::create_dir_all(&scratch).unwrap();
    let mounts: BTreeMap<String, PathBuf> = BTreeMap::from([
        ("/recipe".to_owned(), project.clone()),
        ("/scratch".to_owned(), scratch.clone()),
    ]);
    for mount in container["volumeMounts"].as_array().unwrap() {
        assert!(mounts.contains_key(mount["mountPath"].as_str().unwrap()));
    }
    let local = |s: &str| {
        mounts.iter().fold(s.to_owned(), |s, (at, dir)| {
            s.replace(&format!("{at}/"), &format!("{}/", dir.display()))
        })
    };
    let mut pod_env = BTreeMap::new();
    for var in container["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap().to_owned();
        let value = match var["value"].as_str() {
            Some(v) => v.to_owned(),
            None => "k8s-user:k8s-token".to_owned(),
        };
        pod_env.insert(name, value);
    }
    // The registry names of the example become the test registry's.
    for value in pod_env.values_mut() {
        *value = local(&value.replace("registry.example.org", &fleet.registry.addr));
    }
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            local(
                &pod_env
                    .iter()
                    .fold(a.to_owned(), |a, (k, v)| a.replace(&format!("$({k})"), v)),
            )
        })
        .collect();
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let output = fleet.job(&scratch, &format!("strata {}", quoted.join(" ")), &pod_env);
    assert!(Fleet::layer_states(&output).iter().all(|s| s == "fetched"));
    assert_eq!(fleet.tags("research/analysis").len(), 2, "`:1` added");

    // Slurm: the batch script, with what sbatch sets.
    let submit = t.join("slurm");
    fs::create_dir_all(submit.join("tmp")).unwrap();
    let output = fleet.job(
        &submit,
        &format!("bash {}", example("slurm.sbatch").display()),
        &env(&[
            ("RECIPE", project.join("image.kdl").display().to_string()),
            ("IMAGE", format!("{}/research/slurm", fleet.registry.addr)),
            ("STRATA_CACHE_REPO", fleet.cache_repo()),
            ("SLURM_JOB_ID", "4242".to_owned()),
            ("SLURM_SUBMIT_DIR", submit.display().to_string()),
            ("TMPDIR", submit.join("tmp").display().to_string()),
        ]),
    );
    assert!(Fleet::layer_states(&output).iter().all(|s| s == "fetched"));
    assert!(submit.join("digest-4242.txt").exists());
    assert_eq!(
        fs::read_dir(submit.join("tmp")).unwrap().count(),
        0,
        "the job's local cache is removed"
    );
    assert_eq!(fleet.tags("research/slurm").len(), 1);
}
