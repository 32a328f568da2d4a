# Data stage: speech/noise corpus -> simulated rooms -> mixture database (rows only; audio renders on the fly).


BUILD_CORPUS_SCRIPT = workflow_script("build_corpus.py")


rule corpus:
    """Demo corpus (eSpeak NG speech + synthetic noises) or the user's files, split by speaker."""
    input:
        code=BUILD_CORPUS_SCRIPT.code,
    output:
        directory(CORPUS_DIR),
    log:
        "logs/data/corpus.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        corpus=config["corpus"],
        seed=config["seed"],
        sample_rate=config["sample_rate"],
    script:
        BUILD_CORPUS_SCRIPT.path


BUILD_ROOMS_SCRIPT = workflow_script("build_rooms.py")


rule rooms:
    """Shoebox rooms (pyroomacoustics): multichannel RIRs per source and the target RIR at the reference mic."""
    input:
        corpus=CORPUS_DIR,
        code=BUILD_ROOMS_SCRIPT.code,
    output:
        directory(ROOMS_DIR),
    log:
        "logs/data/rooms.log",
    conda:
        "../envs/data.yaml"
    threads: 2
    resources:
        mem_mb=2000,
    params:
        rooms=config["rooms"],
        seed=config["seed"],
        sample_rate=config["sample_rate"],
    script:
        BUILD_ROOMS_SCRIPT.path


BUILD_DB_SCRIPT = workflow_script("build_db.py")


rule mixture_db:
    """Mixture rows per split (speech x two noises x room x SNR, seeds, offsets, gains), built atomically; a recorded
    corpus's rows name its files and checksums instead (no rooms are simulated for it)."""
    input:
        **({} if RECORDED else {"rooms": ROOMS_DIR}),
        corpus=CORPUS_DIR,
        code=BUILD_DB_SCRIPT.code,
    output:
        **db_outputs(),
    log:
        "logs/data/mixture_db.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        mixtures=config["mixtures"],
        seed=config["seed"],
        url=DB_URL,
    script:
        BUILD_DB_SCRIPT.path


rule test_set_corpus:
    """A public test set's recordings, checked against its recipe (config `test_sets.<name>.corpus`)."""
    input:
        code=BUILD_CORPUS_SCRIPT.code,
    output:
        directory("results/test_sets/{test_set}/corpus"),
    log:
        "logs/data/test_sets/{test_set}/corpus.log",
    wildcard_constraints:
        test_set="|".join(TEST_SETS.values()) or "(?!)",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        test_set="{test_set}",
        corpus=lambda wc: config["test_sets"][wc.test_set]["corpus"],
        seed=config["seed"],
        sample_rate=config["sample_rate"],
    script:
        BUILD_CORPUS_SCRIPT.path


rule test_set_db:
    """A public test set's mixture DB: one row per recording, naming its files and their checksums."""
    input:
        corpus="results/test_sets/{test_set}/corpus",
        code=BUILD_DB_SCRIPT.code,
    output:
        digest="results/test_sets/{test_set}/db/digest.txt",
        summary="results/test_sets/{test_set}/db/summary.tsv",
        db="results/test_sets/{test_set}/db/mixtures.sqlite",
    log:
        "logs/data/test_sets/{test_set}/mixture_db.log",
    wildcard_constraints:
        test_set="|".join(TEST_SETS.values()) or "(?!)",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        test_set="{test_set}",
        mixtures=config["mixtures"],
        seed=config["seed"],
        url=lambda wc: f"sqlite:///results/test_sets/{wc.test_set}/db/mixtures.sqlite",
    script:
        BUILD_DB_SCRIPT.path
