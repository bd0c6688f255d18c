# Interface targets every real target links: one for warnings, one for build options.
add_library(certgate_warnings INTERFACE)
add_library(certgate::warnings ALIAS certgate_warnings)
target_compile_options(certgate_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
# g++ 12 reports false positives from inside libstdc++ at -O2 and above (GCC bugs 105329 and
# 105651 for -Wrestrict; -Wnull-dereference on std::istreambuf_iterator), which would break
# -Werror builds without pointing at certgate code.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(certgate_warnings INTERFACE -Wno-restrict)
else()
  target_compile_options(certgate_warnings INTERFACE -Wnull-dereference)
endif()
if(CERTGATE_WARNINGS_AS_ERRORS)
  target_compile_options(certgate_warnings INTERFACE -Werror)
endif()

add_library(certgate_options INTERFACE)
add_library(certgate::options ALIAS certgate_options)
target_compile_features(certgate_options INTERFACE cxx_std_20)
if(CERTGATE_SANITIZERS)
  target_compile_options(certgate_options INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(certgate_options INTERFACE -fsanitize=address,undefined)
  # GCC 12 with -fsanitize reports -Wmaybe-uninitialized inside libstdc++ (std::regex's
  # std::function states) that no code of ours can fix; ASan itself checks real reads.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(certgate_options INTERFACE -Wno-maybe-uninitialized)
  endif()
endif()

# certgate_module(NAME SOURCES ... DEPS ...): one static library per module.
function(certgate_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  add_library(certgate::${name} ALIAS ${name})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE certgate::warnings certgate::options ${ARG_PRIVATE_DEPS})
endfunction()
