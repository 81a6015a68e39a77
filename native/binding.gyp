{
  "variables": {
    "napi_include": "<!(node -p \"require('node-addon-api').include_dir\")"
  },
  "target_defaults": {
    "cflags!": ["-O2", "-O0"],
    "cflags_cc!": ["-std=gnu++17", "-fno-exceptions", "-O2", "-O0"],
    "cflags": ["-O3", "-fPIC"],
    "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-fexceptions", "-fno-math-errno"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno"]
    },
    "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 1}}
  },
  "targets": [
    {
      "target_name": "attune_isa_avx2",
      "type": "static_library",
      "sources": ["src/isa_avx2.cpp"],
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-O3", "-mavx2", "-mfma", "-mf16c"]}
        }]
      ]
    },
    {
      "target_name": "attune_isa_avx512",
      "type": "static_library",
      "sources": ["src/isa_avx512.cpp"],
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {
          "cflags_cc": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma", "-mf16c", "-Wno-uninitialized", "-Wno-maybe-uninitialized"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-O3", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma"]}
        }]
      ]
    },
    {
      "target_name": "attune_isa_avx512bf16",
      "type": "static_library",
      "sources": ["src/isa_avx512bf16.cpp"],
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {
          "cflags_cc": ["-mavx512bf16", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma", "-mf16c", "-Wno-uninitialized", "-Wno-maybe-uninitialized"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-O3", "-mavx512bf16", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma"]}
        }]
      ]
    },
    {
      "target_name": "attune_isa_amx",
      "type": "static_library",
      "sources": ["src/isa_amx.cpp"],
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {
          "cflags_cc": ["-mamx-tile", "-mamx-bf16", "-mavx512bf16", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma", "-mf16c", "-Wno-uninitialized", "-Wno-maybe-uninitialized"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-O3", "-mamx-tile", "-mamx-bf16", "-mavx512bf16", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma"]}
        }]
      ]
    },
    {
      "target_name": "attune_native",
      "sources": [
        "src/binding.cpp",
        "src/cpu.cpp",
        "src/pool.cpp",
        "src/gemm.cpp",
        "src/gemm_bf16.cpp",
        "src/isa_base.cpp",
        "src/elementwise.cpp",
        "src/reduce.cpp",
        "src/norm.cpp",
        "src/attention.cpp",
        "src/lce.cpp",
        "src/qgemm.cpp",
        "src/mmap.cpp"
      ],
      "dependencies": ["attune_isa_avx2", "attune_isa_avx512", "attune_isa_avx512bf16", "attune_isa_amx"],
      "include_dirs": ["<(napi_include)"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "libraries": ["-pthread"]
    }
  ]
}
