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
    """Mixture rows per split (speech x two noises x room x SNR, seeds, offsets, gains), built atomically."""
    input:
        corpus=CORPUS_DIR,
        rooms=ROOMS_DIR,
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
