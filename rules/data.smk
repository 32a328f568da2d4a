# Data stage: speech/noise corpus -> simulated rooms -> mixture database (rows only; audio renders on the fly).


rule corpus:
    """Demo corpus (eSpeak NG speech + synthetic noises) or the user's files, split by speaker."""
    input:
        lib_sources("data/corpus.py", "data/audio.py", "data/espeak.py", "data/demo_corpus.py", "data/noises.py"),
    output:
        directory(CORPUS_DIR),
    params:
        corpus=config["corpus"],
        seed=config["seed"],
        sample_rate=config["sample_rate"],
    log:
        "logs/data/corpus.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/build_corpus.py"


rule rooms:
    """Shoebox rooms (pyroomacoustics): multichannel RIRs per source and the target RIR at the reference mic."""
    input:
        corpus=CORPUS_DIR,
        code=lib_sources("data/rooms.py", "data/audio.py"),
    output:
        directory(ROOMS_DIR),
    params:
        rooms=config["rooms"],
        seed=config["seed"],
        sample_rate=config["sample_rate"],
    log:
        "logs/data/rooms.log",
    threads: 2
    resources:
        mem_mb=2000,
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/build_rooms.py"


rule mixture_db:
    """Mixture rows per split (speech x two noises x room x SNR, seeds, offsets, gains), built atomically."""
    input:
        corpus=CORPUS_DIR,
        rooms=ROOMS_DIR,
        code=lib_sources("data/db.py"),
    output:
        **db_outputs(),
    params:
        mixtures=config["mixtures"],
        seed=config["seed"],
        url=DB_URL,
    log:
        "logs/data/mixture_db.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/build_db.py"
