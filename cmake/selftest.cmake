# Each module registers its self-test with ar_add_selftest(NAME LIBRARY); tests/ builds one
# runner (CZMQ's czmq_selftest shape) from the collected table and adds one ctest per module.
set_property(GLOBAL PROPERTY AR_SELFTESTS "")
set_property(GLOBAL PROPERTY AR_SELFTEST_LIBS "")
function(ar_add_selftest name lib)
    set_property(GLOBAL APPEND PROPERTY AR_SELFTESTS ${name})
    set_property(GLOBAL APPEND PROPERTY AR_SELFTEST_LIBS ${lib})
endfunction()
