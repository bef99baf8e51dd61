# bpf_object(<name> [SOURCE <file>]): compiles bpf/<name>.bpf.c (or <file>) with clang for the BPF target (CO-RE against
# the checked-in vmlinux.h), turns the object into a skeleton with bpftool, and defines the
# INTERFACE target <name>_skel whose include path holds <name>.skel.h. The object is embedded
# in the skeleton, so the exporter loads nothing from disk.

find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)
find_program(LLVM_STRIP NAMES llvm-strip llvm-strip-16 llvm-strip-15 llvm-strip-14 REQUIRED)

# bpf/include/<arch>/vmlinux.h exists for x86 only.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(BPF_ARCH x86)
else()
  message(FATAL_ERROR "no bpf/include/<arch>/vmlinux.h for ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(BPF_SOURCE_DIR ${PROJECT_SOURCE_DIR}/bpf)

function(bpf_object name)
  cmake_parse_arguments(ARG "" "SOURCE" "" ${ARGN})
  set(src ${BPF_SOURCE_DIR}/${name}.bpf.c)
  if(ARG_SOURCE)
    set(src ${ARG_SOURCE})
  endif()
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel_dir ${CMAKE_CURRENT_BINARY_DIR}/skel)
  set(skel ${skel_dir}/${name}.skel.h)
  file(GLOB deps ${BPF_SOURCE_DIR}/*.h ${BPF_SOURCE_DIR}/lib/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${BPF_ARCH}
            -I${BPF_SOURCE_DIR}/include/${BPF_ARCH} -I${BPF_SOURCE_DIR}
            -c ${src} -o ${obj}
    # DWARF is only for debugging the object; BTF (kept) is what CO-RE and the verifier use.
    COMMAND ${LLVM_STRIP} -g ${obj}
    DEPENDS ${src} ${deps}
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${skel_dir}
    COMMAND sh -c "${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}.tmp && mv ${skel}.tmp ${skel}"
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  # The shared headers as "bpf/<probe>.h", for quoted includes only: bpf/ itself on the include
  # path would put bpf/sched.h in the place of the C library's <sched.h>.
  target_include_directories(${name}_skel INTERFACE ${skel_dir})
  target_compile_options(${name}_skel INTERFACE -iquote ${PROJECT_SOURCE_DIR})
endfunction()
