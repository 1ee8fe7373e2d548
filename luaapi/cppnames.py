"""The C++ type names dnsdist 1.7.3 puts in "Unable to convert parameter from X to Y" (LuaWrapper
prints typeid(T).name(), the mangled form), for the parameter types the rule bindings take."""

INT = "i"
UINT = "j"
UINT8 = "h"
UINT16 = "t"
ULONG = "m"
DOUBLE = "d"
BOOL = "b"
STRING = "NSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
OPT_INT = "N5boost8optionalIiEE"
OPT_UINT = "N5boost8optionalIjEE"
OPT_BOOL = "N5boost8optionalIbEE"
INT_OR_STRING = "N5boost7variantIiJNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEEEE"
UINT_OR_STRING = "N5boost7variantIjJNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEEEE"
DNSRULE = "St10shared_ptrI7DNSRuleE"
DNSACTION = "St10shared_ptrI9DNSActionE"
ANY_ACTION = "N5boost7variantISt10shared_ptrI9DNSActionEJS1_I17DNSResponseActionEEEE"
RULE_LIST = "St6vectorISt4pairIiSt10shared_ptrI7DNSRuleEESaIS4_EE"
RULE_ACTION_LIST = "St6vectorISt4pairIiSt10shared_ptrI17DNSDistRuleActionEESaIS4_EE"
LUA_DNSRULE = ("N5boost7variantINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEJSt6vector"
               "ISt4pairIiS6_ESaIS9_EESt10shared_ptrI7DNSRuleE7DNSNameS7_IS8_IiSF_ESaISG_EEEEE")
RESPONSE_CONFIG = ("N5boost8optionalISt13unordered_mapINSt7__cxx1112basic_stringIcSt11char_traits"
                   "IcESaIcEEENS_7variantIbJjEEESt4hashIS7_ESt8equal_toIS7_ESaISt4pairIKS7_S9_"
                   "EEEEE")
RULE_PARAMS = ("N5boost8optionalISt13unordered_mapINSt7__cxx1112basic_stringIcSt11char_traitsIc"
               "ESaIcEEENS_7variantIS7_JEEESt4hashIS7_ESt8equal_toIS7_ESaISt4pairIKS7_S9_EEEEE")
SHOW_RULES_OPTIONS = ("N5boost8optionalISt13unordered_mapINSt7__cxx1112basic_stringIcSt11char_"
                      "traitsIcESaIcEEENS_7variantIbJiS7_St6vectorISt4pairIiiESaISB_EEEEESt4hash"
                      "IS7_ESt8equal_toIS7_ESaISA_IKS7_SE_EEEEE")
LUA_RULE_FUNC = "St8functionIFbPK11DNSQuestionEE"
LUA_ACTION_FUNC = ("St8functionIFSt5tupleIJiN5boost8optionalINSt7__cxx1112basic_stringIcSt11char_"
                   "traitsIcESaIcEEEEEEEP11DNSQuestionEE")
LUA_RESPONSE_FUNC = ("St8functionIFSt5tupleIJiN5boost8optionalINSt7__cxx1112basic_stringIcSt11"
                     "char_traitsIcESaIcEEEEEEEP11DNSResponseEE")
NAMESET = "10DNSNameSet"
SMN = "15SuffixMatchNode"
NMG = "12NetmaskGroup"
OPT_STRING = "N5boost8optionalINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEEE"
LUA_FFI_RULE_FUNC = "St8functionIFbP25dnsdist_ffi_dnsquestion_tEE"
LUA_FFI_ACTION_FUNC = "St8functionIFiP25dnsdist_ffi_dnsquestion_tEE"
LUA_FFI_RESPONSE_FUNC = "St8functionIFiP25dnsdist_ffi_dnsquestion_tEE"
# dq:spoof()'s argument: a table of ComboAddress or of strings
SPOOF_VALUES = ("N5boost7variantISt6vectorISt4pairIi12ComboAddressESaIS4_EEJS1_IS2_IiNSt7__cxx11"
                "12basic_stringIcSt11char_traitsIcESaIcEEEESaISD_EEEEE")
